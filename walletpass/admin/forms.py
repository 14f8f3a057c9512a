"""Parse and validate the admin's forms. Flask-free: a form is any str -> str mapping.

Each parser returns ``(values, errors)``; ``errors`` is a list of ``{"field", "message"}``
(the shape :class:`walletpass.loyalty.rules.RulesError` uses), shown next to the field.
Nothing is saved when there is any error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from walletpass.i18n.catalogues import Text, text
from walletpass.i18n.formats import number
from walletpass.loyalty import rules as loyalty_rules
from walletpass.loyalty.models import ProgramKind
from walletpass.offers.models import MAX_TOTAL_CAP, MAX_USES_PER_COUPON

Errors = list[dict[str, str]]

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
COLOUR_FIELDS = ("background", "foreground", "label")
BARCODE_FORMATS = ("qr", "ean13", "code39", "codabar", "itf")
KINDS = tuple(k.value for k in ProgramKind)


def _text(form: Mapping[str, str], name: str, limit: int = 200) -> str:
    return str(form.get(name) or "").strip()[:limit]


def parse_colour(raw: str) -> str | None:
    raw = raw.strip()
    if HEX.match(raw):
        return raw.lower()
    if re.fullmatch(r"#[0-9a-fA-F]{3}", raw):
        return "#" + "".join(ch * 2 for ch in raw[1:]).lower()
    return None


def _apple_design(form: Mapping[str, str], errors: Errors) -> dict[str, Any]:
    """Apple Wallet's iOS 27 settings (walletpass.cards.design checks them against the
    template and the members' card numbers); left out while off, as a design without them."""
    design: dict[str, Any] = {}
    if form.get("poster_style"):
        design["poster_style"] = True
    barcode_format = _text(form, "barcode_format", 16) or "qr"
    if barcode_format not in BARCODE_FORMATS:
        errors.append({"field": "barcode_format", "message": "Pick one of the barcode formats."})
    elif barcode_format != "qr":
        design["barcode_format"] = barcode_format
    return design


def parse_program(form: Mapping[str, str], templates: list[str]) -> tuple[dict[str, Any], Errors]:
    """name, slug, kind, template, rules (JSON text, validated for the kind), colours."""
    errors: Errors = []
    values: dict[str, Any] = {
        "name": _text(form, "name"),
        "slug": _text(form, "slug", 64).lower(),
        "kind": _text(form, "kind", 16),
        "template": _text(form, "template", 64),
    }
    if not values["name"]:
        errors.append({"field": "name", "message": "Give the program a name."})
    if not SLUG.match(values["slug"]):
        errors.append(
            {
                "field": "slug",
                "message": "Use lowercase letters, digits and dashes (it becomes /join/<slug>).",
            }
        )
    if values["kind"] not in KINDS:
        errors.append({"field": "kind", "message": f"Pick one of: {', '.join(KINDS)}."})
    if values["template"] not in templates:
        errors.append({"field": "template", "message": "Pick one of the pass templates."})
    design: dict[str, Any] = {}
    for name in COLOUR_FIELDS:
        colour = parse_colour(_text(form, name, 16))
        if colour is None:
            errors.append({"field": name, "message": "Use a colour like #1f3b4d."})
        else:
            design[name] = colour
    logo_text = _text(form, "logo_text", 60)
    if logo_text:
        design["logo_text"] = logo_text
    design.update(_apple_design(form, errors))
    values["design"] = design
    raw_rules = str(form.get("rules") or "").strip() or "{}"
    try:
        # Money in the rules is decimal: 0.1 must not pass through a float.
        decoded = json.loads(raw_rules, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        errors.append(
            {"field": "rules", "message": f"Not valid JSON (line {exc.lineno}): {exc.msg}."}
        )
        return values, errors
    if values["kind"] in KINDS:
        try:
            parsed = loyalty_rules.validate_rules(values["kind"], decoded)
        except loyalty_rules.RulesError as exc:
            for err in exc.errors:
                field = f"rules.{err['field']}" if err["field"] else "rules"
                errors.append({"field": field, "message": err["message"]})
        else:
            values["rules"] = parsed.model_dump(mode="json")
    return values, errors


def parse_local_datetime(raw: str, tz: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` value read in the merchant's zone, as UTC.

    :raise ValueError: not a date and time.
    """
    raw = raw.strip()
    if not raw:
        return None
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def local_input_value(moment: datetime | None, tz: ZoneInfo) -> str:
    """The ``datetime-local`` input value that shows ``moment`` in the merchant's zone."""
    if moment is None:
        return ""
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def parse_offer(
    form: Mapping[str, str], tz: ZoneInfo, lang: str = "en"
) -> tuple[dict[str, Any], Errors]:
    """The offer form's values, and its errors in ``lang`` (the page's language)."""
    t = text(lang)
    errors: Errors = []
    values: dict[str, Any] = {
        "title": _text(form, "title"),
        "slug": _text(form, "slug", 64).lower(),
        "description": _text(form, "description", 2000),
        "terms": _text(form, "terms", 4000),
        "overlay": form.get("overlay") in ("on", "1", "true", "yes"),
        # An unticked checkbox is not sent at all: missing means off, or no offer could
        # ever be deactivated (the new-offer form starts ticked instead).
        "active": form.get("active") in ("on", "1", "true", "yes"),
    }
    if not values["title"]:
        errors.append({"field": "title", "message": t.gettext("Give the offer a title.")})
    if not SLUG.match(values["slug"]):
        message = t.gettext("Use lowercase letters, digits and dashes.")
        errors.append({"field": "slug", "message": message})
    program = _text(form, "program_id", 20)
    values["program_id"] = int(program) if program.isdigit() else None
    kind = _text(form, "discount_type", 16)
    raw_value = _text(form, "discount_value", 20)
    try:
        amount = Decimal(raw_value)
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        amount = None
    if kind not in ("percent", "amount"):
        errors.append({"field": "discount_type", "message": t.gettext("Pick percent or amount.")})
    elif amount is None or amount <= 0:
        errors.append({"field": "discount_value", "message": t.gettext("Enter a positive number.")})
    elif kind == "percent" and amount > 100:
        errors.append(
            {"field": "discount_value", "message": t.gettext("A percentage is at most 100.")}
        )
    elif amount != amount.quantize(Decimal("0.01")):
        errors.append(
            {"field": "discount_value", "message": t.gettext("Use at most two decimals.")}
        )
    else:
        value: Any = int(amount) if kind == "percent" and amount == int(amount) else str(amount)
        if kind == "amount":
            value = str(amount.quantize(Decimal("0.01")))
        values["discount"] = {"type": kind, "value": value}
    for name in ("valid_from", "valid_until"):
        try:
            values[name] = parse_local_datetime(_text(form, name, 40), tz)
        except ValueError:
            errors.append({"field": name, "message": t.gettext("Enter a date and time.")})
            values[name] = None
    if (
        values["valid_from"]
        and values["valid_until"]
        and values["valid_until"] <= values["valid_from"]
    ):
        message = t.gettext("The offer must end after it starts.")
        errors.append({"field": "valid_until", "message": message})
    values["uses_per_coupon"] = (
        _int(form, "uses_per_coupon", 1, errors, t, minimum=1, maximum=MAX_USES_PER_COUPON) or 1
    )
    values["total_cap"] = _int(form, "total_cap", None, errors, t, minimum=1, maximum=MAX_TOTAL_CAP)
    return values, errors


def _int(
    form: Mapping[str, str],
    name: str,
    default: int | None,
    errors: Errors,
    t: Text,
    *,
    minimum: int,
    maximum: int,
) -> int | None:
    raw = _text(form, name, 12)
    if not raw:
        return default
    if not re.fullmatch(r"\d+", raw) or not minimum <= int(raw) <= maximum:
        errors.append(
            {
                "field": name,
                "message": t.gettext(
                    "Enter a whole number from %(minimum)s to %(maximum)s.",
                    minimum=number(minimum, t.lang),
                    maximum=number(maximum, t.lang),
                ),
            }
        )
        return default
    return int(raw)


def parse_store(form: Mapping[str, str], lang: str = "en") -> tuple[dict[str, Any], Errors]:
    """The store form's values, and its errors in ``lang`` (the page's language)."""
    t = text(lang)
    errors: Errors = []
    values: dict[str, Any] = {
        "code": _text(form, "code", 64),
        "name": _text(form, "name"),
        "address": _text(form, "address", 500) or None,
    }
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", values["code"]):
        message = t.gettext("Use letters, digits, dashes or underscores.")
        errors.append({"field": "code", "message": message})
    if not values["name"]:
        errors.append({"field": "name", "message": t.gettext("Give the store a name.")})
    for name, limit in (("latitude", 90), ("longitude", 180)):
        raw = _text(form, name, 32)
        if not raw:
            values[name] = None
            continue
        try:
            number = float(raw)
        except ValueError:
            number = float("nan")
        if not (-limit <= number <= limit):
            errors.append(
                {
                    "field": name,
                    "message": t.gettext(
                        "Enter a number between %(low)s and %(high)s.", low=-limit, high=limit
                    ),
                }
            )
            values[name] = None
        else:
            values[name] = number
    if (values.get("latitude") is None) != (values.get("longitude") is None) and not errors:
        errors.append(
            {
                "field": "longitude",
                "message": t.gettext("Give both latitude and longitude, or neither."),
            }
        )
    return values, errors


def parse_birthday(raw: str) -> date | None:
    """ISO ``YYYY-MM-DD``; :raise ValueError: anything else."""
    raw = raw.strip()
    return date.fromisoformat(raw) if raw else None


def parse_bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "y", "on", "x"}
