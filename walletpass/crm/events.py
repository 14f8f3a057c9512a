"""Outbound events: ``emit`` records an event for every endpoint subscribed to it.

Called by the domain in the same transaction as the change, so an event is delivered if
and only if its change committed (the deliveries go through the outbox).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

EVENT_TYPES = (
    "member.created",
    "pass.installed",
    "pass.removed",
    "scan.recorded",
    "points.changed",
    "reward.redeemed",
    "coupon.redeemed",
    "campaign.finished",
)


def emit(session: Session, merchant_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Queue ``event_type`` with ``data`` for the merchant's subscribed endpoints."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    # Delivery is implemented by the CRM integration (walletpass.crm.outbound).
    from walletpass.crm import outbound

    outbound.queue_event(session, merchant_id, event_type, data)
