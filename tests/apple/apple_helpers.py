"""A loyalty card as Wallet sees it, shared by the Apple web-service tests."""

from __future__ import annotations

from typing import Any

import factories
import pytest

from walletpass.loyalty.models import Member
from walletpass.passes.models import Pass
from walletpass.passes.services import pass_changed


@pytest.fixture
def card(runtime, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        mem = factories.member(s, p, points_balance=10)
        row = factories.member_pass(s, settings, mem)
        return {
            "serial": row.serial,
            "token": row.auth_token,
            "id": row.id,
            "type": row.pass_type_id,
            "member_id": mem.id,
            "merchant_id": m.id,
        }


def set_points(runtime, settings, card: dict[str, Any], points: int) -> None:  # type: ignore[no-untyped-def]
    """Change what the card shows, the way the ledger does: balance + pass_changed."""
    with runtime.transaction(card["merchant_id"]) as s:
        s.get(Member, card["member_id"]).points_balance = points
        pass_changed(s, s.get(Pass, card["id"]), settings=settings)
