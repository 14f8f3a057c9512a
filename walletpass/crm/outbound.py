"""Outbound webhook deliveries (placeholder: no endpoints can be registered yet)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def queue_event(session: Session, merchant_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Nothing to deliver until webhook endpoints exist."""
