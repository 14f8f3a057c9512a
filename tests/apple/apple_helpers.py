"""Helpers shared by the Apple web-service tests (the card fixture is in conftest.py)."""

from __future__ import annotations

from typing import Any

from walletpass.loyalty.models import Member
from walletpass.passes.models import Pass
from walletpass.passes.services import pass_changed


def set_points(runtime, settings, card: dict[str, Any], points: int) -> None:  # type: ignore[no-untyped-def]
    """Change what the card shows, the way the ledger does: balance + pass_changed."""
    with runtime.transaction(card["merchant_id"]) as s:
        s.get(Member, card["member_id"]).points_balance = points
        pass_changed(s, s.get(Pass, card["id"]), settings=settings)
