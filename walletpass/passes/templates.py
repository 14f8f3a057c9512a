"""Pass templates on disk: one folder per design under ``walletpass/pass_templates/``
(or ``WALLETPASS_TEMPLATES_DIR``)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from walletpass.passes import wallet_rules

STYLES = ("storeCard", "coupon")
FIELD_GROUPS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields")
# The poster style's groups besides those (walletpass.passes.wallet_rules checks them all).
POSTER_GROUPS = ("footerFields", "additionalInfoFields")
# The iOS 27 poster style and the style iOS 26 and older read beside it (poster.json).
POSTER_STYLES = ("posterGeneric", "generic")
REQUIRED_ICONS = ("icon.png", "icon@2x.png", "icon@3x.png")

# Everything the service may pass to a template (docs/pass-templates.md documents each).
VARIABLES = frozenset(
    {
        "serial",
        "pass_type_id",
        "team_id",
        "organization_name",
        "description",
        "web_service_url",
        "auth_token",
        "barcode_message",
        "barcode_alt_text",
        "program_name",
        "logo_text",
        "background_color",
        "foreground_color",
        "label_color",
        "background_hex",
        "logo_url",
        "member_name",
        "member_number",
        "points",
        "stamps",
        "stamps_goal",
        "stamps_left",
        "stamps_text",
        "tier",
        "tier_discount",
        "next_tier_text",
        "membership_valid_until",
        "offer_title",
        "offer_text",
        "coupon_title",
        "coupon_discount",
        "coupon_terms",
        "coupon_valid_until",
        "coupon_uses_left",
        "expiry_warning",
        "rewards_text",
        "terms",
        "website_url",
        "google_class_id",
        "card_url",
    }
)

# A value for every variable: template previews, and the tests' "full variable set".
SAMPLE_VARIABLES: Mapping[str, Any] = MappingProxyType(
    {
        "serial": "5b0e6f1c-7d7a-4d8e-9a43-2f6a1c9e0b11",
        "pass_type_id": "pass.dev.walletpass.local",
        "team_id": "DEVTEAM001",
        "organization_name": "Bean There Coffee",
        "description": "Bean There Coffee loyalty card",
        "web_service_url": "https://wallet.example.com/apple",
        "auth_token": "q3Zk9tV7wR2mX8pL4sN6yB1c",
        "barcode_message": "WP-7Q4M-2K9X",
        "barcode_alt_text": "7Q4M 2K9X",
        "program_name": "Coffee Club",
        "logo_text": "Bean There",
        "background_color": "rgb(59, 36, 24)",
        "foreground_color": "rgb(255, 247, 235)",
        "label_color": "rgb(233, 200, 160)",
        "background_hex": "#3b2418",
        "logo_url": "https://wallet.example.com/assets/templates/stamp_card/logo@3x.png",
        "member_name": "Alex Example",
        "member_number": "000123",
        "points": 1240,
        "stamps": 4,
        "stamps_goal": 10,
        "stamps_left": 6,
        "stamps_text": "4/10",
        "tier": "Silver",
        "tier_discount": "5%",
        "next_tier_text": "€1,200 to Gold",
        "membership_valid_until": "2026-12-31T23:59:59+01:00",
        "offer_title": "THIS WEEKEND",
        "offer_text": "Double points on every pastry",
        "coupon_title": "SPRING SALE",
        "coupon_discount": "20% off",
        "coupon_terms": "One use per customer. Not valid with other offers.",
        "coupon_valid_until": "2026-05-31T23:59:59+02:00",
        "coupon_uses_left": 1,
        "expiry_warning": "150 points expire on 30 June",
        "rewards_text": "Free coffee",
        "terms": "Points have no cash value. Full terms on our website.",
        "website_url": "https://beanthere.example",
        "google_class_id": "3388000000012345678.coffee-club-v1",
        "card_url": "https://wallet.example.com/p/5b0e6f1c-7d7a-4d8e-9a43-2f6a1c9e0b11",
    }
)

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Files in a template folder that are not part of the .pkpass bundle. manifest.json and
# signature are listed so that a stale signed bundle unpacked into a folder cannot leak in.
_NOT_BUNDLED = frozenset(
    {
        "pass.json",
        "poster.json",
        "template.json",
        "google_class.json",
        "manifest.json",
        "signature",
    }
)


class TemplateError(ValueError):
    """A template folder or template file is unusable."""


class MissingVariableError(TemplateError, KeyError):
    """A template uses a ``${name}`` the caller did not supply."""

    def __init__(self, variable: str, template: str) -> None:
        self.variable = variable
        self.template = template
        super().__init__(
            f"pass template {template!r} uses ${{{variable}}}, "
            f"but no variable {variable!r} was given"
        )

    # KeyError.__str__ would repr() the message, quoting it a second time.
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class PassTemplate:
    """A loaded template. Files are read and hashed once, when the template is loaded.

    Equality and hashing use name, path and style only, so a template can key the
    ``functools.lru_cache`` of rendered stamp strips.
    """

    name: str
    path: Path
    style: str
    pass_json: dict = field(compare=False, repr=False)
    static_files: Mapping[str, bytes] = field(compare=False, repr=False)
    static_hashes: Mapping[str, str] = field(compare=False, repr=False)
    google_class: dict | None = field(compare=False, repr=False)
    # Parsed template.json (program kinds, default colours, dynamic strip settings).
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Parsed poster.json: the posterGeneric and generic styles a design with the poster
    # style on carries in place of ``style`` (None: the template has no poster layout).
    poster: dict | None = field(default=None, compare=False, repr=False)
    # A field formats a ``${name}`` as a number (numberStyle, currencyCode): only the
    # rendered pass can show that the value is one, so render checks it again.
    typed_placeholders: bool = field(default=False, compare=False, repr=False)


def list_templates(templates_root: Path) -> list[str]:
    """Names of the template folders (those holding a pass.json), sorted."""
    root = Path(templates_root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "pass.json").is_file())


def template_dir(templates_root: Path, name: str) -> Path:
    """The folder of template ``name``.

    :raise TemplateError: for an unknown name, or one that tries to leave the root.
    """
    root = Path(templates_root)
    # A template name comes from the database or the admin UI: never let it walk out.
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise TemplateError(f"invalid pass template name {name!r}")
    path = root / name
    if not (path / "pass.json").is_file():
        known = ", ".join(list_templates(root)) or "none"
        raise TemplateError(f"unknown pass template {name!r} in {root} (known: {known})")
    return path


def load_template(path: str | Path) -> PassTemplate:
    """Load the template folder at ``path``; cached per process on the resolved path.

    :raise TemplateError: no pass.json, a missing icon, bad JSON or an unsupported style.
    """
    return _load_resolved(Path(path).resolve())


def clear_template_cache() -> None:
    """Forget loaded templates (tests, or after templates were edited on disk)."""
    _load_resolved.cache_clear()


def placeholders(obj: Any) -> set[str]:
    """Every ``${name}`` used anywhere in a parsed JSON template."""
    found: set[str] = set()
    for text in _strings(obj):
        found.update(PLACEHOLDER.findall(text))
    return found


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _strings(item)


@functools.lru_cache(maxsize=64)
def _load_resolved(path: Path) -> PassTemplate:
    if not (path / "pass.json").is_file():
        raise TemplateError(f"{path} is not a pass template: it has no pass.json")
    missing = [name for name in REQUIRED_ICONS if not (path / name).is_file()]
    if missing:
        raise TemplateError(f"pass template {path.name!r} lacks {', '.join(missing)}")
    pass_json = _read_json(path / "pass.json")
    styles = [key for key in STYLES if key in pass_json]
    if len(styles) != 1:
        raise TemplateError(
            f"pass template {path.name!r} needs exactly one style key of {STYLES}, "
            f"found {styles or 'none'}"
        )
    poster_path = path / "poster.json"
    poster = _read_json(poster_path) if poster_path.is_file() else None
    check_template(path.name, pass_json, poster)
    google_path = path / "google_class.json"
    google_class = _read_json(google_path) if google_path.is_file() else None
    meta_path = path / "template.json"
    meta = _read_json(meta_path) if meta_path.is_file() else {}
    files = _static_files(path)
    # SHA-1 because Apple's manifest.json format is SHA-1; nothing here relies on it for security.
    hashes = {
        name: hashlib.sha1(data, usedforsecurity=False).hexdigest() for name, data in files.items()
    }
    return PassTemplate(
        name=path.name,
        path=path,
        style=styles[0],
        pass_json=pass_json,
        static_files=MappingProxyType(files),
        static_hashes=MappingProxyType(hashes),
        google_class=google_class,
        meta=MappingProxyType(meta),
        poster=poster,
        typed_placeholders=_has_typed_placeholders(pass_json[styles[0]], poster),
    )


def _has_typed_placeholders(style: Mapping[str, Any], poster: Mapping[str, Any] | None) -> bool:
    for body in (style, *(poster or {}).values()):
        for fields in body.values() if isinstance(body, Mapping) else ():
            for entry in fields if isinstance(fields, list) else ():
                if not isinstance(entry, Mapping):
                    continue
                value = entry.get("value")
                typed = "numberStyle" in entry or "currencyCode" in entry
                if typed and isinstance(value, str) and "${" in value:
                    return True
    return False


def check_template(
    name: str, pass_json: Mapping[str, Any], poster: Mapping[str, Any] | None
) -> None:
    """Refuse a template Wallet would refuse, in its classic style and, when it has one,
    in its poster style (walletpass.passes.wallet_rules says what each rule is).

    :raise TemplateError: naming every problem and what to fix.
    """
    found = [f"pass.json: {p}" for p in wallet_rules.problems(pass_json)]
    if poster is not None:
        unknown = sorted(set(poster) - set(POSTER_STYLES))
        missing = [s for s in POSTER_STYLES if s not in poster]
        if unknown or missing:
            found.append(
                f"poster.json must hold exactly {' and '.join(POSTER_STYLES)} "
                f"(missing: {', '.join(missing) or 'none'}; "
                f"unknown: {', '.join(unknown) or 'none'})"
            )
        else:
            styled = {k: v for k, v in pass_json.items() if k not in STYLES}
            found += [f"poster.json: {p}" for p in wallet_rules.problems({**styled, **poster})]
    if found:
        raise TemplateError(f"pass template {name!r}: " + "; ".join(found))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path} must hold a JSON object")
    return data


def _static_files(path: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if not file.is_file() or _skipped(rel):
            continue
        files[rel.as_posix()] = file.read_bytes()
    return files


def _skipped(rel: Path) -> bool:
    # Finder and unzip leave .DS_Store and __MACOSX behind; Wallet rejects a bundle that
    # holds files its manifest does not list, and the manifest is built from this list.
    if any(part.startswith(".") or part == "__MACOSX" for part in rel.parts):
        return True
    if len(rel.parts) == 1:
        return rel.name in _NOT_BUNDLED or rel.name.upper().startswith("README")
    # Only <lang>.lproj folders belong to a bundle (localized strings and images).
    return len(rel.parts) != 2 or not rel.parts[0].endswith(".lproj")
