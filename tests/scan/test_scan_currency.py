"""A purchase is counted in the shop's currency: one in another currency is refused
with a clear error and counts nothing (points, lifetime spend, paying with points)."""

from __future__ import annotations

from decimal import Decimal

from scan_helpers import Till, join, shop

from walletpass.loyalty.models import LedgerEntry, Member


def _member(runtime, member_id: int) -> tuple[int, Decimal, int]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        member = s.get(Member, member_id)
        assert member is not None
        entries = s.query(LedgerEntry).filter_by(member_id=member_id).count()
        return member.points_balance, member.lifetime_spend, entries


def test_a_purchase_in_another_currency_is_refused_and_counts_nothing(client, runtime, settings):  # type: ignore[no-untyped-def]
    info = shop(
        runtime, settings, "points", {"amount_per_point": "1", "points_to_currency": "0.10"}
    )
    card = join(runtime, settings, info)
    till = Till(client, info["key"])
    till.scan(code=card["code"], action="purchase", amount="40.00", currency="EUR", receipt_id="r1")
    before = _member(runtime, card["member_id"])
    assert before == (40, Decimal("40.00"), 1)

    refused = till.scan(
        422, code=card["code"], action="purchase", amount="40.00", currency="USD", receipt_id="r2"
    )
    assert refused["detail"] == "this shop counts purchases in EUR, not USD"
    assert refused["errors"] == [{"field": "body.currency", "message": "must be EUR"}]
    # Paying part of it with points is refused before the points are spent.
    till.scan(
        422,
        code=card["code"],
        action="purchase",
        amount="40.00",
        currency="GBP",
        receipt_id="r3",
        redeem_points=20,
    )
    assert _member(runtime, card["member_id"]) == before
    # The same receipt sent again in the shop's currency is a new, counted purchase.
    till.scan(code=card["code"], action="purchase", amount="10.00", currency="EUR", receipt_id="r2")
    assert _member(runtime, card["member_id"]) == (50, Decimal("50.00"), 2)
