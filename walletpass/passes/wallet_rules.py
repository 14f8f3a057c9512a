"""What Wallet refuses (or silently drops) in a pass.json, checked before a merchant's
template or design is accepted, so that it fails here with a message and not on a phone.

The rules follow Apple's Wallet Passes reference: "Pass"
(https://developer.apple.com/documentation/walletpasses/pass), "PassFieldContent"
(https://developer.apple.com/documentation/walletpasses/passfieldcontent), "Creating a
poster generic pass" (https://developer.apple.com/documentation/walletpasses/creating-a-poster-generic-pass)
and "Defining the metadata of your Wallet Pass"
(https://developer.apple.com/documentation/walletpasses/defining-the-metadata-of-your-wallet-pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from walletpass.passes.barcodes import APPLE_IOS27_ONLY, APPLE_KNOWN

CLASSIC_STYLES = ("boardingPass", "coupon", "eventTicket", "generic", "storeCard")
POSTER_STYLE = "posterGeneric"
FIELD_GROUPS = (
    "headerFields",
    "primaryFields",
    "secondaryFields",
    "auxiliaryFields",
    "backFields",
    "footerFields",
    "additionalInfoFields",
)
MAX_HEADER = 3
MAX_SECONDARY_AUXILIARY = 4  # coupon and store card: one row of four
MAX_POSTER_HEADER = 1
MAX_POSTER_PRIMARY = 4
MAX_POSTER_FOOTER = 1  # the poster face draws the first footer field only
MAX_FEATURED_ACTIONS = 2
MAX_LOCATIONS = 10
FEATURED_ACTION_TYPES = frozenset(
    {
        "viewSchedule",
        "watchTrailer",
        "listenToMusic",
        "call",
        "place",
        "addToBalance",
        "order",
        "shop",
        "membershipBenefits",
        "bookAppointment",
        "bookCar",
        "bookFlight",
        "bookStay",
        "viewOffersRewards",
    }
)


def style_keys(pass_json: Mapping[str, Any]) -> list[str]:
    return [k for k in (*CLASSIC_STYLES, POSTER_STYLE) if k in pass_json]


def problems(pass_json: Mapping[str, Any], *, rendered: bool = False) -> list[str]:
    """Every reason Wallet would refuse ``pass_json`` or drop part of it, each saying what
    to fix; empty when it is fine.

    :param rendered: the values are filled in (a template's may still be ``${name}``, so
        the checks of a value's type wait for the rendered pass).
    """
    found: list[str] = []
    styles = style_keys(pass_json)
    classic = [s for s in styles if s != POSTER_STYLE]
    if len(classic) != 1:
        found.append(
            "a pass needs exactly one style key of "
            f"{', '.join(CLASSIC_STYLES)} (found {', '.join(classic) or 'none'}); "
            f"{POSTER_STYLE} may only come alongside one of them, as the style older iOS shows"
        )
    for style in styles:
        body = pass_json.get(style)
        if not isinstance(body, Mapping):
            found.append(f"{style} must be an object of field groups")
            continue
        found.extend(_style_problems(style, body, rendered))
    found.extend(_barcode_problems(pass_json.get("barcodes")))
    found.extend(_action_problems(pass_json.get("featuredActions")))
    locations = pass_json.get("locations")
    if isinstance(locations, list) and len(locations) > MAX_LOCATIONS:
        found.append(
            f"locations has {len(locations)} entries; Wallet reads at most {MAX_LOCATIONS}: "
            "keep the nearest or most visited stores"
        )
    return found


def _style_problems(style: str, body: Mapping[str, Any], rendered: bool) -> list[str]:
    found: list[str] = []
    seen: dict[str, str] = {}
    groups: dict[str, list[Any]] = {}
    for group in FIELD_GROUPS:
        fields = body.get(group, [])
        if not isinstance(fields, list):
            found.append(f"{style}.{group} must be a list of fields")
            continue
        groups[group] = fields
        for field in fields:
            key = field.get("key") if isinstance(field, Mapping) else None
            if not key:
                found.append(f"a field in {style}.{group} has no key; give each field a key")
                continue
            if key in seen:
                found.append(
                    f"field key {key!r} is used in both {style}.{seen[key]} and "
                    f"{style}.{group}; each key must be unique within the pass's style"
                )
            seen[key] = group
            found.extend(_field_problems(style, group, field, rendered))

    def count(*names: str) -> int:
        return sum(len(groups.get(n, [])) for n in names)

    if style == POSTER_STYLE:
        limits = (
            ("headerFields", MAX_POSTER_HEADER),
            ("primaryFields", MAX_POSTER_PRIMARY),
            ("footerFields", MAX_POSTER_FOOTER),
        )
        for group, most in limits:
            if count(group) > most:
                found.append(
                    f"{style}.{group} has {count(group)} fields; the poster face shows "
                    f"at most {most}: remove the others or move them to backFields"
                )
        return found
    if count("headerFields") > MAX_HEADER:
        found.append(
            f"{style}.headerFields has {count('headerFields')} fields; Wallet shows at most "
            f"{MAX_HEADER}: move the others to secondaryFields or backFields"
        )
    if style in ("coupon", "storeCard"):
        both = count("secondaryFields", "auxiliaryFields")
        if both > MAX_SECONDARY_AUXILIARY:
            found.append(
                f"{style} has {both} secondary and auxiliary fields together; a {style} "
                f"shows at most {MAX_SECONDARY_AUXILIARY} in its one row: move the others "
                "to backFields"
            )
    return found


def _field_problems(style: str, group: str, field: Mapping[str, Any], rendered: bool) -> list[str]:
    found: list[str] = []
    where = f"{style}.{group} field {field.get('key')!r}"
    if "value" not in field:
        found.append(f"{where} has no value; Wallet refuses a field without one")
    value = field.get("value")
    placeholder = isinstance(value, str) and "${" in value
    for number_key in ("numberStyle", "currencyCode"):
        if number_key not in field:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            if placeholder and not rendered:
                continue
            found.append(
                f"{where} has {number_key} but its value {value!r} is not a number; "
                f"drop {number_key} or make the value a number"
            )
    return found


def _barcode_problems(barcodes: Any) -> list[str]:
    if barcodes is None:
        return []
    if not isinstance(barcodes, list):
        return ["barcodes must be a list of barcode objects"]
    found: list[str] = []
    formats = []
    for entry in barcodes:
        fmt = entry.get("format") if isinstance(entry, Mapping) else None
        if fmt not in APPLE_KNOWN:
            found.append(
                f"barcode format {fmt!r} is not one Wallet draws; use one of "
                f"{', '.join(sorted(APPLE_KNOWN))}"
            )
        formats.append(fmt)
    if formats and all(f in APPLE_IOS27_ONLY for f in formats):
        found.append(
            "every barcode is in a format iOS 26 and older cannot draw; add a "
            "PKBarcodeFormatQR entry after it as the fallback"
        )
    return found


def _action_problems(actions: Any) -> list[str]:
    if actions is None:
        return []
    if not isinstance(actions, list):
        return ["featuredActions must be a list of actions"]
    found: list[str] = []
    if len(actions) > MAX_FEATURED_ACTIONS:
        found.append(
            f"featuredActions has {len(actions)} actions; Wallet shows at most "
            f"{MAX_FEATURED_ACTIONS}: keep the two that matter most, in order"
        )
    ids: set[str] = set()
    for action in actions:
        if not isinstance(action, Mapping):
            found.append("each featured action must be an object")
            continue
        ident = action.get("identifier")
        if not ident:
            found.append("a featured action has no identifier; give each a unique one")
        elif ident in ids:
            found.append(f"featured action identifier {ident!r} is used twice")
        else:
            ids.add(str(ident))
        if action.get("type") not in FEATURED_ACTION_TYPES:
            found.append(
                f"featured action type {action.get('type')!r} is unknown; use one of "
                f"{', '.join(sorted(FEATURED_ACTION_TYPES))}"
            )
        if not action.get("url"):
            found.append(f"featured action {ident!r} has no url")
    return found
