"""Checks of pass.json against the keys, types and limits of Apple's WalletPasses "Pass"
reference (developer.apple.com/documentation/walletpasses/pass), including iOS 27's
poster generic style, featured actions and barcode formats ("Creating a poster generic
pass", developer.apple.com/documentation/walletpasses/creating-a-poster-generic-pass).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from walletpass.passes.barcodes import APPLE_IOS27_ONLY, APPLE_KNOWN
from walletpass.passes.lint.findings import Report
from walletpass.passes.wallet_rules import (
    CLASSIC_STYLES,
    FIELD_GROUPS,
    MAX_FEATURED_ACTIONS,
    MAX_LOCATIONS,
    POSTER_STYLE,
)

REQUIRED_STRINGS = (
    "passTypeIdentifier",
    "teamIdentifier",
    "serialNumber",
    "organizationName",
    "description",
)
# The rules Wallet applies, shared with the template checks (walletpass.passes.wallet_rules)
# and the barcode step (walletpass.passes.barcodes). posterGeneric first: beside its
# generic fallback, it is the style that lays images out.
STYLES = (POSTER_STYLE, *CLASSIC_STYLES)
# Formats every iOS since 9 draws in `barcodes` (the legacy `barcode` takes all but Code128).
CLASSIC_FORMATS = APPLE_KNOWN - APPLE_IOS27_ONLY
# iOS 27's four new formats. We write Interleaved 2 of 5 as PKBarcodeFormatI2of5, as the
# Pass.Barcodes page spells it; the WWDC26 session calls it "ITF", and a pass made
# elsewhere may spell it PKBarcodeFormatITF, which is accepted too.
NEW_FORMATS = APPLE_IOS27_ONLY | {"PKBarcodeFormatITF"}
DATE_STYLES = frozenset(
    f"PKDateStyle{name}" for name in ("None", "Short", "Medium", "Long", "Full")
)
MAX_BEACONS = 10
MIN_TOKEN_LENGTH = 16
_COLOR = re.compile(r"rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)")
# An ISO 8601 date with a time and an offset ("2026-03-01T10:00:00+01:00" or "...Z").
_ISO_WITH_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})")
_STRING_KEYS = (
    *REQUIRED_STRINGS,
    "logoText",
    "webServiceURL",
    "authenticationToken",
    "appLaunchURL",
    "groupingIdentifier",
)


def check_pass_json(report: Report, data: Mapping[str, Any]) -> None:
    """Add every pass.json problem in ``data`` (the parsed object) to ``report``."""
    _check_top(report, data)
    _check_style(report, data)
    _check_web_service(report, data)
    _check_barcodes(report, data)
    _check_places(report, data)
    _check_dates(report, data)
    _check_colors(report, data)
    _check_featured_actions(report, data)


def _check_top(report: Report, data: Mapping[str, Any]) -> None:
    if data.get("formatVersion") != 1 or isinstance(data.get("formatVersion"), bool):
        report.error(
            "format-version",
            "/formatVersion",
            f"formatVersion must be the number 1 (found {data.get('formatVersion')!r}); "
            "Wallet refuses any other value.",
        )
    for key in REQUIRED_STRINGS:
        if key not in data:
            report.error(
                "key-missing", f"/{key}", f"pass.json has no {key}, which Wallet requires."
            )
    for key in _STRING_KEYS:
        if key in data and not (isinstance(data[key], str) and data[key]):
            report.error(
                "key-type",
                f"/{key}",
                f"{key} must be a non-empty string (found {data[key]!r}).",
            )
    for key in ("voided", "sharingProhibited", "suppressStripShine"):
        if key in data and not isinstance(data[key], bool):
            report.error("key-type", f"/{key}", f"{key} must be true or false.")


def _check_style(report: Report, data: Mapping[str, Any]) -> None:
    styles = [s for s in STYLES if s in data]
    if not styles:
        report.error(
            "style-missing",
            "/",
            "pass.json has no style key (storeCard, coupon, generic, eventTicket, "
            "boardingPass or posterGeneric); Wallet cannot lay the pass out.",
        )
        return
    if len(styles) > 1 and set(styles) != {"generic", "posterGeneric"}:
        report.error(
            "style-multiple",
            "/",
            f"pass.json has more than one style key ({', '.join(styles)}); Wallet needs "
            "exactly one (generic beside posterGeneric is the only allowed pair).",
        )
    if styles == ["posterGeneric"]:
        report.warning(
            "poster-without-generic",
            "/posterGeneric",
            "posterGeneric needs iOS 27; without a generic style beside it, iPhones on "
            "iOS 26 and earlier cannot add the pass. Add a generic key with the same fields.",
        )
    seen: dict[str, str] = {}
    for style in styles:
        _check_fields(report, style, data[style], seen)


def _check_fields(report: Report, style: str, body: Any, seen: dict[str, str]) -> None:
    if not isinstance(body, Mapping):
        report.error("key-type", f"/{style}", f"{style} must be an object of field groups.")
        return
    # The poster and its generic fallback describe one pass twice: a key may repeat
    # between them, not within one.
    seen_here: dict[str, str] = {}
    for group in FIELD_GROUPS:
        fields = body.get(group)
        if fields is None:
            continue
        where = f"/{style}/{group}"
        if not isinstance(fields, list):
            report.error("key-type", where, f"{group} must be an array of fields.")
            continue
        for index, field in enumerate(fields):
            _check_field(report, f"{where}/{index}", field, seen_here)
    seen.update(seen_here)


def _check_field(report: Report, path: str, field: Any, seen: dict[str, str]) -> None:
    if not isinstance(field, Mapping):
        report.error("key-type", path, "A field must be an object with key and value.")
        return
    key = field.get("key")
    if not isinstance(key, str) or not key:
        report.error("field-key-missing", f"{path}/key", "The field has no key; Wallet needs one.")
    elif key in seen:
        report.error(
            "field-key-duplicate",
            f"{path}/key",
            f"Field key {key!r} is also used at {seen[key]}; keys must be unique across all "
            "field groups or Wallet refuses the pass.",
        )
    else:
        seen[key] = path
    if "value" not in field:
        report.error(
            "field-value-missing", f"{path}/value", "The field has no value; Wallet refuses it."
        )
        return
    value = field["value"]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        report.error(
            "field-value-type",
            f"{path}/value",
            f"A field value must be a string, a number or an ISO 8601 date (found {value!r}).",
        )
        return
    _check_field_styles(report, path, field, value)


def _check_field_styles(report: Report, path: str, field: Mapping[str, Any], value: Any) -> None:
    for key in ("dateStyle", "timeStyle"):
        if key not in field:
            continue
        if field[key] not in DATE_STYLES:
            report.error("field-style-unknown", f"{path}/{key}", f"{field[key]!r} is not a {key}.")
        elif not (isinstance(value, str) and _ISO_WITH_OFFSET.fullmatch(value)):
            report.error(
                "field-date-style",
                f"{path}/value",
                f"The field has a {key} but its value {value!r} is not an ISO 8601 date with "
                "a time zone; Wallet cannot format it.",
            )
    for key in ("numberStyle", "currencyCode"):
        if key in field and (isinstance(value, bool) or not isinstance(value, int | float)):
            report.error(
                "field-number-style",
                f"{path}/{key}",
                f"{key} applies only to a number, but the value is {value!r}; Wallet "
                "refuses the pass. Give the value as a JSON number or drop the key.",
            )
    message = field.get("changeMessage")
    if message is not None and (not isinstance(message, str) or "%@" not in message):
        report.warning(
            "change-message-placeholder",
            f"{path}/changeMessage",
            f"changeMessage {message!r} has no %@, so the update notice cannot show the new "
            'value (Wallet shows a generic "changed" message). Put %@ where the value goes.',
        )


def _check_web_service(report: Report, data: Mapping[str, Any]) -> None:
    url = data.get("webServiceURL")
    token = data.get("authenticationToken")
    if url is not None and token is None:
        report.error(
            "web-service-without-token",
            "/authenticationToken",
            "webServiceURL is given without an authenticationToken; Wallet refuses the pass. "
            "Give both, or neither for a pass that never updates.",
        )
    if token is not None and url is None:
        report.error(
            "token-without-web-service",
            "/webServiceURL",
            "authenticationToken is given without a webServiceURL; give both or neither.",
        )
    if isinstance(url, str) and urlsplit(url).scheme != "https":
        report.error(
            "web-service-not-https",
            "/webServiceURL",
            f"webServiceURL {url!r} is not HTTPS; iPhones never register or fetch updates "
            "over plain HTTP (except with a developer setting).",
        )
    if isinstance(token, str) and len(token) < MIN_TOKEN_LENGTH:
        report.error(
            "token-too-short",
            "/authenticationToken",
            f"authenticationToken has {len(token)} characters; Wallet needs at least "
            f"{MIN_TOKEN_LENGTH}. Use a random token per pass.",
        )


def _check_barcodes(report: Report, data: Mapping[str, Any]) -> None:
    if "barcode" in data:
        report.warning(
            "barcode-deprecated",
            "/barcode",
            "The singular barcode key is deprecated since iOS 9; use the barcodes array.",
        )
    barcodes = data.get("barcodes")
    if barcodes is None:
        return
    if not isinstance(barcodes, list):
        report.error("key-type", "/barcodes", "barcodes must be an array of barcode objects.")
        return
    formats = []
    for index, entry in enumerate(barcodes):
        path = f"/barcodes/{index}"
        if not isinstance(entry, Mapping):
            report.error("key-type", path, "A barcode must be an object.")
            continue
        formats.append(entry.get("format"))
        _check_barcode(report, path, entry)
    if formats and not CLASSIC_FORMATS & set(formats) and NEW_FORMATS & set(formats):
        report.warning(
            "barcode-no-fallback",
            "/barcodes",
            "Every barcode uses a format new in iOS 27, so iPhones on iOS 26 and earlier "
            "show no barcode. Add a QR (or PDF417, Aztec, Code128) entry after it.",
        )


def _check_barcode(report: Report, path: str, entry: Mapping[str, Any]) -> None:
    fmt = entry.get("format")
    if fmt not in CLASSIC_FORMATS | NEW_FORMATS:
        report.error(
            "barcode-format-unknown",
            f"{path}/format",
            f"{fmt!r} is not a barcode format Wallet knows; it draws no barcode.",
        )
    if not isinstance(entry.get("message"), str):
        report.error(
            "barcode-message-type",
            f"{path}/message",
            f"The barcode message must be a string (found {entry.get('message')!r}); a "
            "number makes the pass fail to load. Quote it.",
        )
    if not isinstance(entry.get("messageEncoding"), str):
        report.error(
            "barcode-encoding-missing",
            f"{path}/messageEncoding",
            'The barcode has no messageEncoding; Wallet requires one (usually "iso-8859-1").',
        )


def _check_places(report: Report, data: Mapping[str, Any]) -> None:
    locations = data.get("locations")
    if isinstance(locations, list):
        if len(locations) > MAX_LOCATIONS:
            report.warning(
                "locations-too-many",
                "/locations",
                f"{len(locations)} locations: Wallet uses at most {MAX_LOCATIONS}.",
            )
        for index, place in enumerate(locations):
            _check_location(report, f"/locations/{index}", place)
    elif locations is not None:
        report.error("key-type", "/locations", "locations must be an array.")
    beacons = data.get("beacons")
    if isinstance(beacons, list):
        if len(beacons) > MAX_BEACONS:
            report.warning(
                "beacons-too-many",
                "/beacons",
                f"{len(beacons)} beacons: Wallet uses at most {MAX_BEACONS}.",
            )
        for index, beacon in enumerate(beacons):
            if not (isinstance(beacon, Mapping) and isinstance(beacon.get("proximityUUID"), str)):
                report.error(
                    "beacon-invalid", f"/beacons/{index}", "A beacon needs a proximityUUID string."
                )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_location(report: Report, path: str, place: Any) -> None:
    ok = isinstance(place, Mapping)
    lat: Any = place.get("latitude") if ok else None
    lon: Any = place.get("longitude") if ok else None
    if not (_number(lat) and _number(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        report.error(
            "location-invalid",
            path,
            "A location needs numeric latitude (-90 to 90) and longitude (-180 to 180); "
            f"found {lat!r}, {lon!r}.",
        )
    if ok and "altitude" in place and not _number(place["altitude"]):
        report.error("location-invalid", f"{path}/altitude", "altitude must be a number.")


def _iso_ok(value: Any) -> bool:
    if not (isinstance(value, str) and _ISO_WITH_OFFSET.fullmatch(value)):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _check_dates(report: Report, data: Mapping[str, Any]) -> None:
    dates: list[tuple[str, Any]] = [
        (f"/{key}", data[key]) for key in ("expirationDate", "relevantDate") if key in data
    ]
    relevant = data.get("relevantDates")
    if isinstance(relevant, list):
        for index, entry in enumerate(relevant):
            if isinstance(entry, Mapping):
                dates += [(f"/relevantDates/{index}/{k}", v) for k, v in entry.items()]
    for path, value in dates:
        if not _iso_ok(value):
            report.error(
                "date-format",
                path,
                f"{value!r} is not an ISO 8601 date with a time and a time zone offset "
                '(e.g. "2026-05-01T09:00:00+02:00"); Wallet ignores or misreads it.',
            )
    if "relevantDate" in data and "relevantDates" not in data:
        report.note(
            "relevant-date-deprecated",
            "/relevantDate",
            "relevantDate is deprecated since iOS 18 in favour of relevantDates; it still "
            "works, but newer iPhones prefer relevantDates.",
        )


def _check_colors(report: Report, data: Mapping[str, Any]) -> None:
    for key in ("backgroundColor", "foregroundColor", "labelColor"):
        if key not in data:
            continue
        match = _COLOR.fullmatch(str(data[key]))
        if match is None or any(int(part) > 255 for part in match.groups()):
            report.warning(
                "color-format",
                f"/{key}",
                f'{key} {data[key]!r} is not "rgb(r, g, b)" with 0-255 parts; Wallet '
                "ignores it and uses its default colour.",
            )


def _check_featured_actions(report: Report, data: Mapping[str, Any]) -> None:
    actions = data.get("featuredActions")
    if actions is None:
        return
    if not isinstance(actions, list):
        report.error("key-type", "/featuredActions", "featuredActions must be an array.")
    elif len(actions) > MAX_FEATURED_ACTIONS:
        report.warning(
            "featured-actions-too-many",
            "/featuredActions",
            f"{len(actions)} featured actions: Wallet shows at most {MAX_FEATURED_ACTIONS}, "
            "in the order given.",
        )
