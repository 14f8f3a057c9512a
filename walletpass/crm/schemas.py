"""The webhook contract: the JSON Schemas in ``walletpass/crm/contract/``, loaded once.

The files are the contract CRM integrators read; the inbound handler validates against
the very same files (and the tests validate every payload sent), so the documentation
and the behaviour cannot drift apart.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from jsonschema import Draft202012Validator

from walletpass.resources import WEBHOOK_CONTRACT_DIR

Direction = Literal["inbound", "outbound"]

# Shipped in the package (``walletpass/crm/contract/``); docs/webhooks.md explains it.
SCHEMA_DIR = WEBHOOK_CONTRACT_DIR
_SUFFIX = ".schema.json"


@functools.cache
def _validators(direction: Direction) -> dict[str, Draft202012Validator]:
    folder = SCHEMA_DIR / direction
    if not folder.is_dir():
        raise RuntimeError(f"webhook schemas not found in {folder}")
    found: dict[str, Draft202012Validator] = {}
    for path in sorted(folder.glob(f"*{_SUFFIX}")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        # With the format checker, "email" and "date" are asserted, not just annotations.
        found[path.name[: -len(_SUFFIX)]] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return found


def event_types(direction: Direction) -> frozenset[str]:
    return frozenset(_validators(direction))


def validator(direction: Direction, event_type: str) -> Draft202012Validator | None:
    return _validators(direction).get(event_type)


def field_errors(direction: Direction, event_type: str, document: Any) -> list[dict[str, str]]:
    """Every violation as ``{"field": "data.member.email", "message": ...}``; [] when valid.

    :raise KeyError: for an event type without a schema.
    """
    found = validator(direction, event_type)
    if found is None:
        raise KeyError(event_type)
    problems = []
    for err in sorted(found.iter_errors(document), key=lambda e: list(map(str, e.path))):
        path = err.json_path.removeprefix("$").removeprefix(".")
        problems.append({"field": path or "body", "message": err.message})
    return problems
