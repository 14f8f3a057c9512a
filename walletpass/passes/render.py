"""Fill a pass template with a pass's variables: pass.json, Google class, bundle files."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from walletpass.passes.stamp_strip import StampPalette, render_stamp_strip
from walletpass.passes.templates import (
    FIELD_GROUPS,
    PLACEHOLDER,
    MissingVariableError,
    PassTemplate,
    TemplateError,
)

MAX_LOCATIONS = 10
# Keys Wallet refuses a pass without; an empty variable here is a caller bug, not an
# optional field, so it fails loudly instead of producing a pass that will not install.
_REQUIRED_KEYS = (
    "passTypeIdentifier",
    "teamIdentifier",
    "serialNumber",
    "organizationName",
    "description",
)
_OPTIONAL = "optional"
_EMPTY = (None, "")


class _Filler:
    """Substitutes ``${name}`` placeholders in a parsed JSON template."""

    def __init__(self, template: PassTemplate, variables: Mapping[str, Any]) -> None:
        self.template = template
        self.variables = variables

    def lookup(self, name: str) -> Any:
        try:
            value = self.variables[name]
        except KeyError:
            raise MissingVariableError(name, self.template.name) from None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                # Wallet reads a date without an offset in the device's zone, so the same
                # pass would expire at different instants for different customers.
                raise TemplateError(
                    f"variable {name!r} of template {self.template.name!r} is a naive "
                    "datetime; pass an aware one"
                )
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return value

    def fill(self, obj: Any) -> tuple[Any, bool]:
        """The filled copy of ``obj``, and whether any placeholder in it came out empty."""
        if isinstance(obj, str):
            return self._fill_string(obj)
        if isinstance(obj, list):
            out: list[Any] = []
            any_empty = False
            for item in obj:
                value, empty = self.fill(item)
                if isinstance(item, dict) and item.get(_OPTIONAL):
                    # A dropped optional part is handled; it must not empty its parent.
                    if empty:
                        continue
                else:
                    any_empty |= empty
                out.append(value)
            return out, any_empty
        if isinstance(obj, dict):
            result: dict[str, Any] = {}
            any_empty = False
            for key, raw in obj.items():
                if key == _OPTIONAL:
                    continue
                value, empty = self.fill(raw)
                if isinstance(raw, dict) and raw.get(_OPTIONAL):
                    if empty:
                        continue
                else:
                    any_empty |= empty
                # JSON null or "" is never a valid value in pass.json or a Google class.
                if value in _EMPTY:
                    continue
                result[key] = value
            return result, any_empty
        return copy.deepcopy(obj), False

    def _fill_string(self, text: str) -> tuple[Any, bool]:
        match = PLACEHOLDER.fullmatch(text)
        if match:
            value = self.lookup(match.group(1))
            return value, value in _EMPTY
        empty = False

        def interpolate(m: Any) -> str:
            nonlocal empty
            value = self.lookup(m.group(1))
            if value in _EMPTY:
                empty = True
                return ""
            return str(value)

        return PLACEHOLDER.sub(interpolate, text), empty


def render_pass_json(
    template: PassTemplate,
    variables: Mapping[str, Any],
    *,
    voided: bool = False,
    expiration_date: datetime | None = None,
    locations: Sequence[Mapping[str, Any]] = (),
) -> dict:
    """The pass.json of one pass, as a dict ready for :func:`dumps_pass_json`.

    :param locations: at most 10 are used (Wallet's limit), in the order given.
    :raise MissingVariableError: the template uses a variable not in ``variables``.
    :raise TemplateError: duplicate field keys, or an empty required key.
    """
    plan = _pass_json_plan(template)
    if plan is not None:
        out = plan(variables, _lookup_fn(template, variables))
    else:
        out = _render_pass_json_reference(template, variables)
    for key in _REQUIRED_KEYS:
        if out.get(key) in _EMPTY:
            raise TemplateError(f"pass template {template.name!r}: {key} came out empty")
    if not (out.get("webServiceURL") and out.get("authenticationToken")):
        # Wallet needs both or neither: half a web service makes the pass fail to install.
        out.pop("webServiceURL", None)
        out.pop("authenticationToken", None)
    _check_unique_keys(template, out[template.style])
    if voided:
        out["voided"] = True
    if expiration_date is not None:
        out["expirationDate"] = _iso(expiration_date, "expiration_date")
    if locations:
        out["locations"] = [_location(loc) for loc in list(locations)[:MAX_LOCATIONS]]
    return out


def _render_pass_json_reference(
    template: PassTemplate, variables: Mapping[str, Any]
) -> dict[str, Any]:
    """The plain walk of the parsed template, on every call.

    The reference the compiled plan (:func:`_compile_pass_json`) reproduces; used directly
    only for a template shaped in a way the compiler leaves alone (which then fails here
    exactly as it always has).
    """
    filler = _Filler(template, variables)
    out: dict[str, Any] = {}
    for key, raw in template.pass_json.items():
        if key == template.style:
            out[key] = _fill_style(filler, raw)
        elif key == "barcodes":
            barcodes = _fill_barcodes(filler, raw)
            if barcodes:
                out[key] = barcodes
        elif key == "barcode":
            # Deprecated since iOS 9 and unable to carry Code128; `barcodes` replaces it.
            continue
        else:
            value, _ = filler.fill(raw)
            if value not in _EMPTY:
                out[key] = value
    return out


def _fill_style(filler: _Filler, raw: Mapping[str, Any]) -> dict[str, Any]:
    style: dict[str, Any] = {}
    for group, value in raw.items():
        if group not in FIELD_GROUPS:
            style[group], _ = filler.fill(value)
            continue
        fields = []
        for field in value:
            filled, _ = filler.fill({k: v for k, v in field.items() if k != _OPTIONAL})
            # A field without a value breaks the pass; an empty one is an absent offer,
            # warning or reward, which should vanish rather than show a bare label. A
            # value like "${stamps}/${stamps_goal}" counts as empty if any part is.
            _, value_empty = filler.fill(field.get("value"))
            if value_empty or filled.get("value") in _EMPTY:
                continue
            fields.append(filled)
        style[group] = fields
    return style


def _fill_barcodes(filler: _Filler, raw: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    barcodes = []
    for entry in raw:
        filled = _finish_barcode(filler.fill(entry)[0])
        if filled is not None:
            barcodes.append(filled)
    return barcodes


def _finish_barcode(filled: Any) -> dict[str, Any] | None:
    """A filled barcodes entry, or None when it has no message."""
    if filled.get("message") in _EMPTY:
        return None
    # An integer message makes Wallet reject the pass; member numbers often look numeric.
    filled["message"] = str(filled["message"])
    if filled.get("altText") in _EMPTY:
        filled.pop("altText", None)
    else:
        filled["altText"] = str(filled["altText"])
    return filled


def _check_unique_keys(template: PassTemplate, style: Mapping[str, Any]) -> None:
    seen: dict[str, str] = {}
    for group in FIELD_GROUPS:
        for field in style.get(group, ()):
            key = field.get("key")
            if not key:
                raise TemplateError(f"pass template {template.name!r}: a {group} entry has no key")
            if key in seen:
                raise TemplateError(
                    f"pass template {template.name!r}: field key {key!r} is used in both "
                    f"{seen[key]} and {group}; Wallet rejects such a pass"
                )
            seen[key] = group


def _iso(value: datetime, what: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (Wallet needs an offset)")
    return value.isoformat(timespec="seconds")


def _location(loc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "latitude": float(loc["latitude"]),
        "longitude": float(loc["longitude"]),
    }
    if loc.get("altitude") is not None:
        out["altitude"] = float(loc["altitude"])
    if loc.get("relevantText"):
        out["relevantText"] = str(loc["relevantText"])
    return out


def render_google_class(template: PassTemplate, variables: Mapping[str, Any]) -> dict | None:
    """The Google Wallet class of the template's design, or None if it has none.

    :raise MissingVariableError: the class template uses a variable not in ``variables``.
    """
    if template.google_class is None:
        return None
    node = template.render_cache.get(_GOOGLE_KEY)
    if node is None:
        node = template.render_cache[_GOOGLE_KEY] = _compile(template.google_class)
    filled, _ = _evaluate(node, _lookup_fn(template, variables))
    return filled


def bundle_files(
    template: PassTemplate, variables: Mapping[str, Any]
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every bundle file but pass.json, manifest.json and signature, with their SHA-1s.

    Static files come from the template as loaded (read and hashed once). A template
    whose template.json says ``"dynamic_strip": "stamps"`` gets a strip drawn for the
    pass's ``stamps`` of ``stamps_goal``, drawn and hashed once per distinct count.
    """
    files = _copy_mapping(template.static_files)
    hashes = _copy_mapping(template.static_hashes)
    if template.meta.get("dynamic_strip") == "stamps":
        for name in ("stamps", "stamps_goal"):
            if name not in variables:
                raise MissingVariableError(name, template.name)
        stamps, goal = variables["stamps"], variables["stamps_goal"]
        # No member behind the pass (a preview, a static build): keep the static strip.
        if stamps is not None and goal:
            for name, data, digest in stamp_strip_files(template, int(stamps), int(goal)):
                files[name] = data
                hashes[name] = digest
    return files, hashes


def _copy_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # A loaded template's files are read-only proxies of dicts; their copy() is a plain
    # dict copy, several times cheaper than dict(proxy), which goes key by key.
    if isinstance(mapping, dict | MappingProxyType):
        return mapping.copy()
    return dict(mapping)


@functools.lru_cache(maxsize=256)
def stamp_strip_files(
    template: PassTemplate, stamps: int, goal: int
) -> tuple[tuple[str, bytes, str], ...]:
    """(name, PNG bytes, SHA-1) of strip.png/@2x/@3x for ``stamps`` of ``goal``."""
    palette = StampPalette.from_mapping(template.meta.get("stamp_palette") or {})
    images = render_stamp_strip(stamps, goal, palette)
    return tuple(
        (name, data, hashlib.sha1(data, usedforsecurity=False).hexdigest())
        for name, data in sorted(images.items())
    )


# One encoder for every call (json.dumps with options builds a new JSONEncoder each time);
# the same options, so the same bytes as
# json.dumps(pass_json, ensure_ascii=False, separators=(",", ":")).
_PASS_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps_pass_json(pass_json: dict) -> bytes:
    """Compact UTF-8 JSON: the exact bytes to hash into the manifest and ship."""
    return _PASS_JSON_ENCODER.encode(pass_json).encode("utf-8")


# Compiled templates. Filling pass.json by walking the parsed template on every call
# (regex per string, isinstance per node, deepcopy per leaf) cost several times what the
# filling itself needs. A template is compiled once, on first use, into nodes that
# evaluate to exactly what _Filler.fill returns: strings pre-split into literal and
# placeholder parts, subtrees without placeholders pre-filled (immutable leaves shared,
# containers copied per call so a caller may edit what it gets back), and the drop rules
# ("optional", empty values) resolved per entry. The cache lives on the PassTemplate
# instance (its render_cache), so a template re-loaded after an edit compiles afresh.
#
# A node is (kind, payload):
_CONST = 0  # payload: an immutable filled value (str, int, float, bool, None)
_COPY = 1  # payload: a filled container without placeholders, copied per evaluation
_VAR = 2  # payload: a variable name; the string was exactly one placeholder
_CALL = 3  # payload: a callable(lookup) -> (value, any placeholder empty)

_PLAN_KEY = "pass_json"
_GOOGLE_KEY = "google_class"
_NO_PLAN = object()  # render_cache marker: the template's shape needs the reference walk
_LEAF_TYPES = (str, int, float, bool, type(None))

Lookup = Callable[[str], Any]
Node = tuple[int, Any]


def _lookup_fn(template: PassTemplate, variables: Mapping[str, Any]) -> Lookup:
    """_Filler.lookup as a plain closure (one call per placeholder)."""
    name_of_template = template.name

    def lookup(name: str) -> Any:
        try:
            value = variables[name]
        except KeyError:
            raise MissingVariableError(name, name_of_template) from None
        if isinstance(value, date):
            if isinstance(value, datetime) and value.tzinfo is None:
                raise TemplateError(
                    f"variable {name!r} of template {name_of_template!r} is a naive "
                    "datetime; pass an aware one"
                )
            return value.isoformat()
        return value

    return lookup


def _copy_filled(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_filled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_filled(v) for v in value]
    return value


def _evaluate(node: Node, lookup: Lookup) -> tuple[Any, bool]:
    kind, payload = node
    if kind == _CONST:
        return payload, False
    if kind == _COPY:
        return _copy_filled(payload), False
    if kind == _VAR:
        value = lookup(payload)
        return value, value in _EMPTY
    return payload(lookup)


def _is_optional(raw: Any) -> bool:
    return isinstance(raw, dict) and bool(raw.get(_OPTIONAL))


def _compile(obj: Any) -> Node:
    """The node that evaluates to ``_Filler.fill(obj)``."""
    if isinstance(obj, str):
        return _compile_string(obj)
    if isinstance(obj, dict):
        return _compile_dict(obj)
    if isinstance(obj, list):
        return _compile_list(obj)
    if isinstance(obj, _LEAF_TYPES):
        return _CONST, obj
    # Not something JSON parses to; keep the reference behaviour (a deep copy per call).
    return _CALL, lambda _lookup: (copy.deepcopy(obj), False)


def _compile_string(text: str) -> Node:
    parts = PLACEHOLDER.split(text)
    if len(parts) == 1:
        return _CONST, text
    if len(parts) == 3 and parts[0] == "" and parts[2] == "":
        return _VAR, parts[1]
    first = parts[0]
    rest = tuple(zip(parts[1::2], parts[2::2], strict=True))  # (name, literal after it)

    def interpolate(lookup: Lookup) -> tuple[str, bool]:
        empty = False
        pieces = [first]
        for name, literal in rest:
            value = lookup(name)
            if value in _EMPTY:
                empty = True
            else:
                pieces.append(str(value))
            pieces.append(literal)
        return "".join(pieces), empty

    return _CALL, interpolate


def _compile_dict(obj: dict) -> Node:
    entries: list[tuple[str, int, Any, bool]] = []
    constant = True
    for key, raw in obj.items():
        if key == _OPTIONAL:
            continue
        kind, payload = _compile(raw)
        if kind in (_CONST, _COPY):
            # Never empty; a constant null or "" is dropped on every call, so drop it now.
            if payload in _EMPTY:
                continue
        else:
            constant = False
        entries.append((key, kind, payload, _is_optional(raw)))
    if constant:
        return _COPY, {key: payload for key, _, payload, _ in entries}
    frozen = tuple(entries)

    def fill_dict(lookup: Lookup) -> tuple[dict[str, Any], bool]:
        result: dict[str, Any] = {}
        any_empty = False
        for key, kind, payload, optional in frozen:
            if kind == _VAR:
                value = lookup(payload)
                if value in _EMPTY:
                    any_empty = True
                    continue
                result[key] = value
                continue
            if kind == _CONST:
                result[key] = payload
                continue
            if kind == _COPY:
                result[key] = _copy_filled(payload)
                continue
            value, empty = payload(lookup)
            if empty:
                if optional:
                    continue
                any_empty = True
            if value in _EMPTY:
                continue
            result[key] = value
        return result, any_empty

    return _CALL, fill_dict


def _compile_list(obj: list) -> Node:
    items = tuple((*_compile(item), _is_optional(item)) for item in obj)
    if all(kind in (_CONST, _COPY) for kind, _, _ in items):
        return _COPY, [payload for _, payload, _ in items]

    def fill_list(lookup: Lookup) -> tuple[list[Any], bool]:
        out: list[Any] = []
        any_empty = False
        for kind, payload, optional in items:
            value, empty = _evaluate((kind, payload), lookup)
            if empty:
                if optional:
                    continue
                any_empty = True
            out.append(value)
        return out, any_empty

    return _CALL, fill_list


# A pass.json plan: one step per top-level key of the template, in template order.
_STEP_VALUE = 0  # payload: node; the key is dropped when it fills to null or ""
_STEP_STYLE = 1  # payload: ((group, node or fields), ...), see _compile_style
_STEP_BARCODES = 2  # payload: a node per barcode entry


def _pass_json_plan(template: PassTemplate) -> Callable[[Mapping, Lookup], dict] | None:
    """The template's compiled pass.json renderer, or None: use the reference walk."""
    plan = template.render_cache.get(_PLAN_KEY)
    if plan is None:
        steps = _compile_pass_json(template)
        plan = _NO_PLAN if steps is None else _generate_pass_json(template, steps)
        template.render_cache[_PLAN_KEY] = plan
    return None if plan is _NO_PLAN else plan


def _compile_pass_json(template: PassTemplate) -> tuple | None:
    """The compiled form of :func:`_render_pass_json_reference`, or None for a template
    shaped in a way only the reference walk reproduces (e.g. a field that is not an object).
    """
    steps: list[tuple[str, int, Any]] = []
    for key, raw in template.pass_json.items():
        if key == template.style:
            style = _compile_style(raw)
            if style is None:
                return None
            steps.append((key, _STEP_STYLE, style))
        elif key == "barcodes":
            if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
                return None
            steps.append((key, _STEP_BARCODES, tuple(_compile(e) for e in raw)))
        elif key == "barcode":
            continue
        else:
            steps.append((key, _STEP_VALUE, _compile(raw)))
    return tuple(steps)


def _compile_style(raw: Any) -> tuple | None:
    if not isinstance(raw, dict):
        return None
    groups: list[tuple[str, bool, Any]] = []
    for group, value in raw.items():
        if group not in FIELD_GROUPS:
            groups.append((group, False, _compile(value)))
            continue
        if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
            return None
        fields = []
        for field in value:
            # _compile_dict leaves out "optional" just as _fill_style's comprehension does.
            value_node = _compile(field.get("value"))
            # Whether the value came out empty: for a plain placeholder or a constant that
            # is exactly whether the filled field lacks a value, so only interpolations
            # and containers need evaluating a second time (as _fill_style does).
            recheck = value_node if value_node[0] == _CALL else None
            fields.append((_compile(field), recheck))
        groups.append((group, True, tuple(fields)))
    return tuple(groups)


# Generated code. The compiled nodes above still dispatch per entry at run time; for
# pass.json, on the path of every signed pass, the plan is turned once per template into
# one straight-line Python function (the same steps, unrolled), which runs in about half
# the time. Template strings and keys enter it only as constants (never as source text),
# and variable names only as their regex-checked identifiers.
class _Codegen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: list[Any] = []
        self.counter = 0

    def lookup(self, indent: int, value: str, name: str) -> None:
        """``value = lookup(name)``, with the common case (a present, non-date value)
        inline: a try costs nothing in CPython 3.11+ until it catches."""
        n = self.const(name)
        self.emit(indent, "try:")
        self.emit(indent + 1, f"{value} = V[{n}]")
        self.emit(indent, "except KeyError:")
        self.emit(indent + 1, f"{value} = L({n})")  # raises MissingVariableError
        self.emit(indent, f"if isinstance({value}, DATE):")
        self.emit(indent + 1, f"{value} = L({n})")

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"K[{len(self.consts) - 1}]"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def node(self, node: Node, indent: int) -> tuple[str, str]:
        """Emit code evaluating ``node``; (value expression, empty expression)."""
        kind, payload = node
        if kind == _CONST:
            return self.const(payload), "False"
        if kind == _COPY:
            return f"CP({self.const(payload)})", "False"
        value, empty = self.fresh("v"), self.fresh("e")
        if kind == _VAR:
            self.lookup(indent, value, payload)
            self.emit(indent, f"{empty} = {value} in EMPTY")
        else:
            self.emit(indent, f"{value}, {empty} = {self.const(payload)}(L)")
        return value, empty

    def dict_node(self, obj: dict, indent: int) -> tuple[str, str]:
        """Like node(_compile_dict(obj)), unrolled entry by entry."""
        result, any_empty = self.fresh("d"), self.fresh("e")
        self.emit(indent, f"{result} = {{}}")
        self.emit(indent, f"{any_empty} = False")
        for key, raw in obj.items():
            if key == _OPTIONAL:
                continue
            kind, payload = _compile(raw)
            k = self.const(key)
            if kind in (_CONST, _COPY):
                if payload in _EMPTY:
                    continue
                value, _ = self.node((kind, payload), indent)
                self.emit(indent, f"{result}[{k}] = {value}")
                continue
            if kind == _VAR:
                value = self.fresh("v")
                self.lookup(indent, value, payload)
                self.emit(indent, f"if {value} in EMPTY:")
                self.emit(indent + 1, f"{any_empty} = True")
                self.emit(indent, "else:")
                self.emit(indent + 1, f"{result}[{k}] = {value}")
                continue
            if isinstance(raw, dict):
                value, empty = self.dict_node(raw, indent)
            else:
                value, empty = self.node((kind, payload), indent)
            if _is_optional(raw):
                self.emit(indent, f"if not {empty} and {value} not in EMPTY:")
            else:
                self.emit(indent, f"if {empty}:")
                self.emit(indent + 1, f"{any_empty} = True")
                self.emit(indent, f"if {value} not in EMPTY:")
            self.emit(indent + 1, f"{result}[{k}] = {value}")
        return result, any_empty


def _generate_pass_json(template: PassTemplate, plan: tuple) -> Callable[[Mapping, Lookup], dict]:
    """One function ``render(variables, lookup)`` filling pass.json as the plan says."""
    gen = _Codegen()
    gen.emit(0, "def render(V, L):")
    gen.emit(1, "out = {}")
    raw_of = template.pass_json
    for key, step, payload in plan:
        k = gen.const(key)
        if step == _STEP_VALUE:
            value, _ = gen.node(payload, 1)
            gen.emit(1, f"if {value} not in EMPTY:")
            gen.emit(2, f"out[{k}] = {value}")
        elif step == _STEP_STYLE:
            style = gen.fresh("s")
            gen.emit(1, f"{style} = {{}}")
            raw_groups = raw_of[key]
            for group, is_fields, group_payload in payload:
                g = gen.const(group)
                if not is_fields:
                    value, _ = gen.node(group_payload, 1)
                    gen.emit(1, f"{style}[{g}] = {value}")
                    continue
                fields = gen.fresh("f")
                gen.emit(1, f"{fields} = []")
                for raw_field, (_, recheck) in zip(raw_groups[group], group_payload, strict=True):
                    filled, _ = gen.dict_node(raw_field, 1)
                    gen.emit(1, f"if {filled}.get('value') not in EMPTY:")
                    if recheck is None:
                        gen.emit(2, f"{fields}.append({filled})")
                    else:
                        _, empty = gen.node(recheck, 2)
                        gen.emit(2, f"if not {empty}:")
                        gen.emit(3, f"{fields}.append({filled})")
                gen.emit(1, f"{style}[{g}] = {fields}")
            gen.emit(1, f"out[{k}] = {style}")
        else:
            barcodes = gen.fresh("b")
            gen.emit(1, f"{barcodes} = []")
            for raw_entry in raw_of[key]:
                filled, _ = gen.dict_node(raw_entry, 1)
                gen.emit(1, f"{filled} = FB({filled})")
                gen.emit(1, f"if {filled} is not None:")
                gen.emit(2, f"{barcodes}.append({filled})")
            gen.emit(1, f"if {barcodes}:")
            gen.emit(2, f"out[{k}] = {barcodes}")
    gen.emit(1, "return out")
    namespace: dict[str, Any] = {
        "K": tuple(gen.consts),
        "CP": _copy_filled,
        "EMPTY": _EMPTY,
        "FB": _finish_barcode,
        "DATE": date,
    }
    code = compile("\n".join(gen.lines), f"<pass template {template.name}>", "exec")
    exec(code, namespace)  # noqa: S102 - generated above; template data only as constants
    return namespace["render"]
