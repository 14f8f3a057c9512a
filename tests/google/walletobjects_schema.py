"""Validate request bodies against Google's own walletobjects v1 discovery document.

The discovery document ships inside google-api-python-client (a test dependency). It
encodes types, formats and enums but not required fields, one-of groups or the rules given
in prose, so those are opt-in extra checks here (``required=True``, ``semantic=True``),
following specs/google-wallet.md §8.

Usage::

    schema = WalletObjectsSchema.load()
    problems = schema.validate("LoyaltyObject", body, semantic=True)
    schema.check("LoyaltyObject", body)  # raises SchemaViolation on any problem
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)

# Required fields named in the reference prose ("Required."); not encoded in the document.
REQUIRED = {
    "LoyaltyClass": ("id", "issuerName", "programName", "programLogo", "reviewStatus"),
    "OfferClass": ("id", "issuerName", "provider", "title", "redemptionChannel", "reviewStatus"),
    "LoyaltyObject": ("id", "classId", "state"),
    "OfferObject": ("id", "classId", "state"),
    "AddMessageRequest": ("message",),
}

RESOURCE_ID = re.compile(r"^\d+\.[A-Za-z0-9._-]+$")
MODULE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# Schemas whose ``id`` is a module id (no dots) rather than a resource id.
MODULE_SCHEMAS = {"TextModuleData", "ImageModuleData", "Uri"}
RESOURCE_SCHEMAS = {"LoyaltyClass", "OfferClass", "LoyaltyObject", "OfferObject"}
ID_REFERENCES = {"classId"}
# Caps Google states in prose on classes and objects ("any additional ... will be rejected";
# value added modules: fifteen on an object or class).
MAX_MERCHANT_LOCATIONS = 10
MAX_VALUE_ADDED_MODULES = 15


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    # A deprecated field or enum alias: accepted by Google, but we send canonical forms only.
    deprecated: bool = False

    def __str__(self) -> str:
        tag = " (deprecated)" if self.deprecated else ""
        return f"{self.path}: {self.message}{tag}"


class SchemaViolation(ValueError):
    def __init__(self, schema: str, problems: list[Problem]) -> None:
        self.schema = schema
        self.problems = problems
        super().__init__(f"{schema}: " + "; ".join(str(p) for p in problems))


def discovery_path() -> Path:
    import googleapiclient

    return (
        Path(googleapiclient.__file__).parent
        / "discovery_cache"
        / "documents"
        / "walletobjects.v1.json"
    )


class WalletObjectsSchema:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, dict[str, Any]] = document["schemas"]
        self.revision = document.get("revision")

    @classmethod
    @functools.cache
    def load(cls, path: str | None = None) -> WalletObjectsSchema:
        """The parsed document, read once per process (360 KB)."""
        file = Path(path) if path else discovery_path()
        return cls(json.loads(file.read_text(encoding="utf-8")))

    def check(
        self, name: str, body: Any, *, required: bool = False, semantic: bool = False
    ) -> None:
        problems = self.validate(name, body, required=required, semantic=semantic)
        if problems:
            raise SchemaViolation(name, problems)

    def validate(
        self, name: str, body: Any, *, required: bool = False, semantic: bool = False
    ) -> list[Problem]:
        """Every problem found in ``body`` as an instance of schema ``name``.

        :param required: also check the "Required." fields of the top-level resource.
        :param semantic: also check the prose rules (ids, colours, balance one-of...).
        """
        if name not in self.schemas:
            raise KeyError(f"no schema {name!r} in walletobjects {self.revision}")
        problems: list[Problem] = []
        self._check_ref(name, body, "$", problems, semantic)
        if required and isinstance(body, dict):
            for field in REQUIRED.get(name, ()):
                if body.get(field) in (None, "", [], {}):
                    problems.append(Problem(f"$.{field}", "required field missing"))
        return problems

    # -- structural checks over the discovery document ------------------------------------

    def _check_ref(
        self, ref: str, value: Any, path: str, problems: list[Problem], semantic: bool
    ) -> None:
        schema = self.schemas[ref]
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected object ({ref}), got {_kind(value)}"))
            return
        props = schema.get("properties", {})
        for key, item in value.items():
            sub = f"{path}.{key}"
            if key not in props:
                problems.append(Problem(sub, f"unknown field for {ref}"))
                continue
            prop = props[key]
            if prop.get("deprecated"):
                problems.append(Problem(sub, "deprecated field", deprecated=True))
            self._check_value(prop, item, sub, problems, semantic)
        if semantic:
            self._semantic(ref, value, path, problems)

    def _check_value(
        self, prop: dict[str, Any], value: Any, path: str, problems: list[Problem], semantic: bool
    ) -> None:
        if "$ref" in prop:
            self._check_ref(prop["$ref"], value, path, problems, semantic)
            return
        kind = prop.get("type")
        if kind == "array":
            self._check_array(prop, value, path, problems, semantic)
        elif kind == "object":
            self._check_object(prop, value, path, problems, semantic)
        elif kind == "string":
            self._check_string(prop, value, path, problems)
        elif kind == "integer":
            self._check_integer(prop.get("format"), value, path, problems)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(Problem(path, f"expected number, got {_kind(value)}"))
        elif kind == "boolean":
            if not isinstance(value, bool):
                problems.append(Problem(path, f"expected boolean, got {_kind(value)}"))
        elif kind == "any" or kind is None:
            return
        else:  # pragma: no cover - a newer document with a new type
            problems.append(Problem(path, f"validator does not know type {kind!r}"))

    def _check_array(
        self, prop: dict[str, Any], value: Any, path: str, problems: list[Problem], semantic: bool
    ) -> None:
        if not isinstance(value, list):
            problems.append(Problem(path, f"expected array, got {_kind(value)}"))
            return
        for i, item in enumerate(value):
            self._check_value(prop["items"], item, f"{path}[{i}]", problems, semantic)

    def _check_object(
        self, prop: dict[str, Any], value: Any, path: str, problems: list[Problem], semantic: bool
    ) -> None:
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected object, got {_kind(value)}"))
            return
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                self._check_value(extra, item, f"{path}.{key}", problems, semantic)
        elif "properties" not in prop and value:
            problems.append(Problem(path, "object with no declared fields must be empty"))

    def _check_string(
        self, prop: dict[str, Any], value: Any, path: str, problems: list[Problem]
    ) -> None:
        fmt = prop.get("format")
        if fmt in ("int64", "uint64", "int32", "uint32"):
            # JSON cannot carry 64-bit integers exactly, so Google types them as strings;
            # it also accepts a plain JSON integer.
            self._check_integer(fmt, value, path, problems)
            return
        if not isinstance(value, str):
            problems.append(Problem(path, f"expected string, got {_kind(value)}"))
            return
        if fmt == "byte":
            try:
                base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                problems.append(Problem(path, "not base64"))
        enum = prop.get("enum")
        if enum is not None:
            if value not in enum:
                problems.append(Problem(path, f"{value!r} is not one of {_canonical(prop)}"))
            else:
                deprecated = prop.get("enumDeprecated") or [False] * len(enum)
                if deprecated[enum.index(value)]:
                    problems.append(
                        Problem(path, f"{value!r} is a deprecated alias", deprecated=True)
                    )

    def _check_integer(
        self, fmt: str | None, value: Any, path: str, problems: list[Problem]
    ) -> None:
        if isinstance(value, bool):
            problems.append(Problem(path, "expected integer, got boolean"))
            return
        if isinstance(value, str):
            if not re.fullmatch(r"-?\d+", value):
                problems.append(Problem(path, f"{value!r} is not a decimal integer"))
                return
            number = int(value)
        elif isinstance(value, int):
            number = value
        else:
            problems.append(Problem(path, f"expected integer, got {_kind(value)}"))
            return
        low, high = {"int32": INT32, "uint32": UINT32, "int64": INT64, "uint64": UINT64}.get(
            fmt or "int32", INT32
        )
        if not low <= number <= high:
            problems.append(Problem(path, f"{number} out of range for {fmt or 'int32'}"))

    # -- prose rules (opt-in) -----------------------------------------------------------

    def _semantic(
        self, ref: str, value: dict[str, Any], path: str, problems: list[Problem]
    ) -> None:
        ident = value.get("id")
        if isinstance(ident, str):
            if ref in MODULE_SCHEMAS and not MODULE_ID.fullmatch(ident):
                problems.append(Problem(f"{path}.id", f"module id {ident!r}: [A-Za-z0-9_-] only"))
            if ref in RESOURCE_SCHEMAS and not RESOURCE_ID.fullmatch(ident):
                problems.append(
                    Problem(f"{path}.id", f"resource id {ident!r} is not <issuer>.<suffix>")
                )
        for key in ID_REFERENCES:
            ref_id = value.get(key)
            if (
                ref in RESOURCE_SCHEMAS
                and isinstance(ref_id, str)
                and not RESOURCE_ID.fullmatch(ref_id)
            ):
                problems.append(Problem(f"{path}.{key}", f"{ref_id!r} is not <issuer>.<suffix>"))
        colour = value.get("hexBackgroundColor")
        if isinstance(colour, str) and not HEX_COLOUR.fullmatch(colour):
            problems.append(
                Problem(f"{path}.hexBackgroundColor", f"{colour!r} is not #rgb/#rrggbb")
            )
        if ref == "LoyaltyPointsBalance":
            set_ = [k for k in ("string", "int", "double", "money") if k in value]
            if len(set_) != 1:
                problems.append(Problem(path, f"exactly one balance subtype, got {set_ or 'none'}"))
        if ref == "LoyaltyPoints" and "balance" not in value:
            problems.append(Problem(f"{path}.balance", "required inside loyaltyPoints"))
        if ref == "Image" and ("sourceUri" in value) == ("privateImageId" in value):
            problems.append(Problem(path, "set exactly one of sourceUri and privateImageId"))
        messages = value.get("messages")
        if isinstance(messages, list) and len(messages) > 10:
            problems.append(Problem(f"{path}.messages", f"{len(messages)} messages, at most 10"))
        self._semantic_2026(ref, value, path, problems)
        if ref == "TimeInterval":
            ends = [value.get(k, {}).get("date") for k in ("start", "end") if k in value]
            offsets = {
                bool(re.search(r"(Z|[+-]\d\d:\d\d)$", d)) for d in ends if isinstance(d, str)
            }
            if len(offsets) > 1:
                problems.append(
                    Problem(path, "start and end must both carry an offset, or neither")
                )

    def _semantic_2026(
        self, ref: str, value: dict[str, Any], path: str, problems: list[Problem]
    ) -> None:
        """The prose rules of the fields issue 22 sends: merchantLocations, linked offers,
        value added modules, app links."""
        if ref in RESOURCE_SCHEMAS:
            for key, cap in (
                ("merchantLocations", MAX_MERCHANT_LOCATIONS),
                ("valueAddedModuleData", MAX_VALUE_ADDED_MODULES),
            ):
                items = value.get(key)
                if isinstance(items, list) and len(items) > cap:
                    problems.append(Problem(f"{path}.{key}", f"{len(items)} given, at most {cap}"))
            for i, linked in enumerate(value.get("linkedOfferIds") or []):
                if not (isinstance(linked, str) and RESOURCE_ID.fullmatch(linked)):
                    problems.append(
                        Problem(f"{path}.linkedOfferIds[{i}]", f"{linked!r}: not <issuer>.<suffix>")
                    )
        if ref in ("MerchantLocation", "LatLongPoint"):
            for key, limit in (("latitude", 90.0), ("longitude", 180.0)):
                number = value.get(key)
                if number is None:
                    problems.append(Problem(f"{path}.{key}", "required"))
                elif isinstance(number, int | float) and not -limit <= number <= limit:
                    problems.append(Problem(f"{path}.{key}", f"{number} outside ±{limit}"))
        if ref == "ValueAddedModuleData":
            # "Required fields are header and uri."
            for key in ("header", "uri"):
                if not value.get(key):
                    problems.append(Problem(f"{path}.{key}", "required in a value added module"))
        if ref == "AppLinkDataAppLinkInfoAppTarget":
            target = value.get("targetUri")
            if isinstance(target, dict) and not target.get("description"):
                # "The description on the URI must be set."
                problems.append(Problem(f"{path}.targetUri.description", "required"))


def _canonical(prop: dict[str, Any]) -> list[str]:
    enum = prop["enum"]
    deprecated = prop.get("enumDeprecated") or [False] * len(enum)
    return [v for v, dep in zip(enum, deprecated, strict=True) if not dep]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
