"""A program's rules as form fields, per program kind, and back. Pure: no Flask, no database.

Each field is named by its path in the rules (``rules.amount_per_point``,
``rules.levels.2.min_spend``, ``rules.expiry.mode``), so an error that
:func:`walletpass.loyalty.rules.validate_rules` reports at ``levels.2.min_spend`` lands
next to its input without a mapping table. What the fields do not cover (a points
program's multipliers) stays JSON in the "advanced" textarea, named ``rules``: the form
shows only the other keys there, and on saving the fields and that JSON are merged (the
JSON's keys win), so nothing a program has is lost by saving the form, and a whole rules
object pasted there still works. The API keeps taking the JSON as it is.

:func:`to_form` gives the form's values for stored rules; :func:`from_form` gives the
rules (as JSON text, for :func:`walletpass.admin.forms.parse_program` to validate) for
posted values; ``from_form(kind, to_form(kind, rules))`` is ``rules`` again.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from walletpass.loyalty.rules import RulesError, validate_rules

PREFIX = "rules."
ADVANCED = "rules"

# Scalar fields per kind: (path, type). "value" is passed as typed (validation reads
# "10" as 10 and "1.50" as a decimal) and left out when blank, so a blank optional field
# takes the rules' default and a blank required one is reported as required; "bool" is a
# checkbox: unticked is not posted and means false.
_EARNING = (
    ("amount_per_point", "value"),
    ("rounding", "value"),
    ("min_spend", "value"),
    ("points_to_currency", "value"),
    ("max_redeem_percent", "value"),
    ("stack_multipliers", "bool"),
    ("bonuses.welcome", "value"),
    ("bonuses.birthday", "value"),
    ("bonuses.birthday_mode", "value"),
    ("bonuses.referral.referrer", "value"),
    ("bonuses.referral.referee", "value"),
)
_TIERS = (("downgrade.mode", "value"),)
_STAMPS = (
    ("goal", "value"),
    ("stamps_per_visit", "value"),
    ("min_spend", "value"),
    ("reward_name", "value"),
    ("bonuses.welcome", "value"),
)
_MEMBERSHIP = (
    ("paid", "bool"),
    ("price", "value"),
    ("validity_months", "value"),
    ("renewal", "value"),
    ("benefits", "value"),
    ("reminder_days", "value"),
)
SCALARS: dict[str, tuple[tuple[str, str], ...]] = {
    "points": _EARNING,
    "tiers": _EARNING + _TIERS,
    "stamps": _STAMPS,
    "membership": _MEMBERSHIP,
    "offers": (("rollover", "bool"),),
}

# Objects chosen by a mode (a discriminated union): only the chosen mode's own fields
# are sent, since the other modes' fields are not allowed beside it.
_WARNED = ("months", "warn_days")
_EXPIRY = ("expiry", {"none": (), "lots": _WARNED, "rolling": _WARNED})
_WINDOW = ("window", {"lifetime": (), "rolling": ("months",)})
MODES: dict[str, tuple[tuple[str, dict[str, tuple[str, ...]]], ...]] = {
    "points": (_EXPIRY,),
    "tiers": (_EXPIRY, _WINDOW),
    "stamps": (_EXPIRY,),
    "membership": (),
    "offers": (),
}

# Lists of rows: the stored rows plus one blank row to add another (no script needed); a
# row left blank is dropped.
ROWS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "points": (),
    "tiers": (("levels", ("name", "min_spend", "discount_percent", "earn_multiplier")),),
    "stamps": (("intermediate_rewards", ("at", "name")),),
    "membership": (),
    "offers": (),
}
SPARE_ROWS = 1


def covered(kind: str) -> set[str]:
    """The top-level rules keys the form's fields set for ``kind``."""
    keys = {path.split(".")[0] for path, _ in SCALARS.get(kind, ())}
    keys |= {name for name, _ in MODES.get(kind, ())}
    keys |= {name for name, _ in ROWS.get(kind, ())}
    return keys


# --- rules -> form ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


def _get(rules: Mapping[str, Any], path: str) -> Any:
    node: Any = rules
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def to_form(kind: str, rules: Mapping[str, Any] | None) -> dict[str, str]:
    """The form's values for a program of ``kind`` with ``rules`` (defaults filled in when
    the rules validate), the keys the fields do not cover as the advanced JSON."""
    raw = dict(rules or {})
    # Rules that do not validate are shown as stored; saving reports what is wrong.
    with contextlib.suppress(RulesError):
        raw = validate_rules(kind, raw).model_dump(mode="json")
    values: dict[str, str] = {}
    for path, _type in SCALARS.get(kind, ()):
        values[PREFIX + path] = _text(_get(raw, path))
    for name, modes in MODES.get(kind, ()):
        found = raw.get(name)
        node: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        mode = str(node.get("mode") or next(iter(modes)))
        values[f"{PREFIX}{name}.mode"] = mode
        for sub in modes.get(mode, ()):
            values[f"{PREFIX}{name}.{sub}"] = _text(node.get(sub))
    for name, columns in ROWS.get(kind, ()):
        listed = raw.get(name)
        rows: list[Any] = listed if isinstance(listed, list) else []
        for i, row in enumerate(rows):
            for column in columns:
                item = row.get(column) if isinstance(row, Mapping) else None
                values[f"{PREFIX}{name}.{i}.{column}"] = _text(item)
    # An empty list is the default of every list the fields leave out (no promotions).
    rest = {k: v for k, v in raw.items() if k not in covered(kind) and v != []}
    values[ADVANCED] = json.dumps(rest, indent=2, ensure_ascii=False) if rest else ""
    return values


def row_indices(kind: str, values: Mapping[str, str]) -> dict[str, list[int]]:
    """For each list of rows of ``kind``, the row numbers to show: those in ``values``
    (stored, or posted back with an error) and :data:`SPARE_ROWS` blank ones after them."""
    out: dict[str, list[int]] = {}
    for name, _columns in ROWS.get(kind, ()):
        pattern = re.compile(re.escape(f"{PREFIX}{name}.") + r"(\d{1,3})\.")
        present = sorted({int(m[1]) for key in values if (m := pattern.match(key))})
        last = present[-1] + 1 if present else 0
        out[name] = present + list(range(last, last + SPARE_ROWS))
    return out


def field_names(kind: str, values: Mapping[str, str]) -> set[str]:
    """Every input the form shows for ``kind``: an error at another path (a multiplier's,
    the rules' own) is shown by the advanced JSON instead."""
    names = {PREFIX + path for path, _ in SCALARS.get(kind, ())}
    for name, modes in MODES.get(kind, ()):
        names.add(f"{PREFIX}{name}.mode")
        names |= {f"{PREFIX}{name}.{sub}" for subs in modes.values() for sub in subs}
    for name, indices in row_indices(kind, values).items():
        names.add(PREFIX + name)  # the list's own errors (none left, out of order) sit under it
        columns = dict(ROWS[kind])[name]
        names |= {f"{PREFIX}{name}.{i}.{c}" for i in indices for c in columns}
    return names


# --- form -> rules ---------------------------------------------------------------------------


@dataclass
class Posted:
    """The rules the form describes, as JSON text, and where each kept row came from."""

    text: str
    # For each list, the form's row number of each rule row (blank rows are dropped, so
    # rule row 1 may be the form's row 2).
    rows: dict[str, list[int]] = field(default_factory=dict)

    def field(self, error_field: str) -> str:
        """The form field of an error at ``error_field`` (``rules.levels.1.name``)."""
        parts = error_field.split(".")
        if len(parts) >= 3 and parts[0] + "." == PREFIX and parts[1] in self.rows:
            index = int(parts[2]) if parts[2].isdigit() else -1
            origin = self.rows[parts[1]]
            if 0 <= index < len(origin):
                parts[2] = str(origin[index])
        return ".".join(parts)


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _ticked(raw: str | None) -> bool:
    return str(raw or "").strip().lower() in ("on", "1", "true", "yes")


def _value(form: Mapping[str, str], name: str) -> str:
    return str(form.get(name) or "").strip()


def from_form(kind: str, form: Mapping[str, str]) -> Posted:
    """The rules a posted form describes for ``kind``: its fields, then the advanced JSON's
    keys over them. Advanced text that is not a JSON object is returned as it is, for the
    rules validation to report."""
    advanced_text = str(form.get(ADVANCED) or "").strip()
    try:
        advanced = json.loads(advanced_text, parse_float=Decimal) if advanced_text else {}
    except json.JSONDecodeError:
        return Posted(advanced_text)
    if not isinstance(advanced, dict):
        return Posted(advanced_text)
    rules: dict[str, Any] = {}
    for path, kind_of in SCALARS.get(kind, ()):
        name = PREFIX + path
        if kind_of == "bool":
            _set(rules, path, _ticked(form.get(name)))
        elif value := _value(form, name):
            _set(rules, path, value)
    for name, modes in MODES.get(kind, ()):
        mode = _value(form, f"{PREFIX}{name}.mode") or next(iter(modes))
        node: dict[str, Any] = {"mode": mode}
        for sub in modes.get(mode, ()):
            if value := _value(form, f"{PREFIX}{name}.{sub}"):
                node[sub] = value
        rules[name] = node
    posted = Posted("")
    for name, columns in ROWS.get(kind, ()):
        indices = row_indices(kind, form)[name]
        kept: list[dict[str, str]] = []
        posted.rows[name] = []
        for i in indices:
            row = {c: v for c in columns if (v := _value(form, f"{PREFIX}{name}.{i}.{c}"))}
            if row:
                kept.append(row)
                posted.rows[name].append(i)
        rules[name] = kept
    rules.update(advanced)
    for name in advanced:
        posted.rows.pop(name, None)  # rows written in the JSON are numbered as written
    posted.text = json.dumps(rules, default=str, ensure_ascii=False)
    return posted
