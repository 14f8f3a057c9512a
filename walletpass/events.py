"""Outbound events: their types, and ``emit``, which queues one in the caller's transaction.

An event is one outbox job (``event.publish``) written with the change it reports, so it
is published if and only if that change commits. Who receives it is decided by the
job's handler, which the receiving side registers with the job registry (the CRM's
webhooks: walletpass.crm.outbound), together with a check that anyone wants the event at
all. This module knows no domain: the domains call it, and it writes through the outbox.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from walletpass.jobs.queue import enqueue

EVENT_TYPES = (
    "member.created",
    "pass.installed",
    "pass.removed",
    "scan.recorded",
    "points.changed",
    "reward.redeemed",
    "coupon.redeemed",
    "campaign.finished",
    "membership.renewed",
)

PUBLISH_KIND = "event.publish"

# ``wants(session, merchant_id, event_type)``: does this receiver take the event? Asked in
# the emitting transaction, so it should be cheap (the CRM reads a merchant's endpoints
# once per transaction).
Wants = Callable[[Session, int, str], bool]
_RECEIVERS: list[Wants] = []


def receiver(wants: Wants) -> Wants:
    """Register a receiving side's check; the side registers the handler of
    :data:`PUBLISH_KIND` that delivers what it wants."""
    if wants not in _RECEIVERS:
        _RECEIVERS.append(wants)
    return wants


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def new_event_id() -> str:
    # Time-ordered prefix (milliseconds) so ids sort roughly by creation, then randomness.
    return f"evt_{int(time.time() * 1000):013x}{secrets.token_hex(8)}"


def emit(session: Session, merchant_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Queue ``event_type`` with ``data`` for the merchant, in the caller's transaction.

    The job carries the envelope a receiver gets (``id``, ``type``, ``created``, ``data``),
    so its id and time are the ones of this call however often the job is retried. No
    job is written when every registered receiver declines (a merchant without webhook
    endpoints, the usual case, costs no row per event); until one registers (a process
    that imported none), every event is queued and the publish job decides.

    :raise ValueError: an unknown event type.
    :raise TypeError: ``data`` holds a value that JSON cannot carry.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if _RECEIVERS and not any(wants(session, merchant_id, event_type) for wants in _RECEIVERS):
        return
    # Round-tripped now: a value that cannot be sent fails the change, not the worker later.
    envelope = {
        "id": new_event_id(),
        "type": event_type,
        "created": int(time.time()),
        "data": json.loads(json.dumps(data, default=_jsonable)),
    }
    enqueue(session, PUBLISH_KIND, envelope, merchant_id=merchant_id)
