"""Fill a pass template with a pass's variables: pass.json, Google class, bundle files."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from walletpass.passes import barcodes, wallet_rules
from walletpass.passes.stamp_strip import StampPalette, render_stamp_strip
from walletpass.passes.templates import (
    FIELD_GROUPS,
    PLACEHOLDER,
    POSTER_GROUPS,
    POSTER_STYLES,
    MissingVariableError,
    PassTemplate,
    TemplateError,
)

MAX_LOCATIONS = 10
_GROUPS = (*FIELD_GROUPS, *POSTER_GROUPS)
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
    poster = uses_poster(template, variables)
    out = _fill_pass_json(template, variables, poster)
    for key in _REQUIRED_KEYS:
        if out.get(key) in _EMPTY:
            raise TemplateError(f"pass template {template.name!r}: {key} came out empty")
    if not (out.get("webServiceURL") and out.get("authenticationToken")):
        # Wallet needs both or neither: half a web service makes the pass fail to install.
        out.pop("webServiceURL", None)
        out.pop("authenticationToken", None)
    for style in POSTER_STYLES if poster else (template.style,):
        _check_unique_keys(template, out[style])
    if voided:
        out["voided"] = True
    if expiration_date is not None:
        out["expirationDate"] = _iso(expiration_date, "expiration_date")
    if locations:
        out["locations"] = [_location(loc) for loc in list(locations)[:MAX_LOCATIONS]]
    _add_relevant_dates(out, variables)
    fmt = str(variables.get("barcode_format") or "qr")
    if fmt != "qr" and out.get("barcodes"):
        number = variables.get("card_number")
        out["barcodes"] = barcodes.apple_entries(fmt, str(number or ""), out["barcodes"])
    # The rest of Wallet's rules were checked when the template was loaded, and what the
    # variables add (barcodes, locations, dates) is built to fit them: checking every
    # rendered pass again cost a third of a render (26 of 82 us, measured).
    if template.typed_placeholders:
        found = wallet_rules.problems(out, rendered=True)
        if found:
            raise TemplateError(f"pass template {template.name!r}: " + "; ".join(found))
    return out


def uses_poster(template: PassTemplate, variables: Mapping[str, Any]) -> bool:
    """Whether this pass carries the iOS 27 poster style (its design says so and the
    template has a poster layout); the classic style otherwise."""
    return bool(variables.get("poster_style")) and template.poster is not None


def _add_relevant_dates(out: dict[str, Any], variables: Mapping[str, Any]) -> None:
    """``relevantDates`` (iOS 18+) for the window the card is about (a coupon's validity,
    an offer shown on a loyalty card), and ``relevantDate``, the one older iOS reads: the
    window's start, or its end when it has no start. ISO 8601 with the shop's offset."""
    if "relevantDates" in out or "relevantDate" in out:
        return  # the template sets its own
    start, end = variables.get("relevant_start"), variables.get("relevant_end")
    if start and end:
        out["relevantDates"] = [{"startDate": str(start), "endDate": str(end)}]
    elif start or end:
        out["relevantDates"] = [{"date": str(start or end)}]
    else:
        return
    out["relevantDate"] = str(start or end)


def _fill_pass_json(
    template: PassTemplate, variables: Mapping[str, Any], poster: bool = False
) -> dict[str, Any]:
    """The parsed template walked and filled, top-level key by key, in template order;
    with ``poster``, the template's poster.json styles in place of its classic style.

    About 80 µs for a shipped template (benchmarks/bench_render.py), paid on every fetch:
    a kept signature is reused only for the same pass.json (walletpass.passes.services).
    """
    filler = _Filler(template, variables)
    out: dict[str, Any] = {}
    for key, raw in template.pass_json.items():
        if key == template.style and poster:
            assert template.poster is not None
            for style in POSTER_STYLES:
                out[style] = _fill_style(filler, template.poster[style])
        elif key == template.style:
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
            # An empty list too: featuredActions whose every action was optional and empty.
            if value not in _EMPTY and value != []:
                out[key] = value
    return out


def _fill_style(filler: _Filler, raw: Mapping[str, Any]) -> dict[str, Any]:
    style: dict[str, Any] = {}
    for group, value in raw.items():
        if group not in _GROUPS:
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
    for group in _GROUPS:
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
    filled, _ = _Filler(template, variables).fill(template.google_class)
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


# The poster face's images (WWDC26 session 209 "What's new in Wallet": a background image
# and a primary logo) drawn from the template's strip and logo when it ships none.
POSTER_IMAGES = {"background": "strip", "primaryLogo": "logo"}


def add_poster_images(files: dict[str, bytes], hashes: dict[str, str]) -> None:
    """Put background.png and primaryLogo.png (1x, 2x, 3x) in a poster pass's bundle: the
    strip (a stamp card's, with the member's stamps) and the logo as they are now, after
    the merchant's own images replaced the template's."""
    for target, source in POSTER_IMAGES.items():
        for suffix in (".png", "@2x.png", "@3x.png"):
            name, origin = target + suffix, source + suffix
            if name not in files and origin in files:
                files[name] = files[origin]
                hashes[name] = hashes[origin]


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
