"""An offers program's coupon pass rolls over to the next offer the member can still use."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from scan_helpers import Till, join, shop
from sqlalchemy import select

from walletpass.db import utcnow
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import issue_coupon
from walletpass.passes.models import Pass


def _offer(runtime, cafe, slug: str, **kw: Any) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction(cafe["merchant_id"]) as s:
        offer = Offer(
            merchant_id=cafe["merchant_id"],
            program_id=cafe["program_id"],
            slug=f"{slug}-{cafe['program_id']}",
            title=slug,
            discount={"type": "percent", "value": 10},
            **kw,
        )
        s.add(offer)
        s.flush()
        return offer.id


def _coupon_pass(runtime, settings, cafe, offer_id: int, member_id: int) -> str:  # type: ignore[no-untyped-def]
    with runtime.transaction(cafe["merchant_id"]) as s:
        _, pass_row = issue_coupon(s, settings, s.get(Offer, offer_id), member_id=member_id)
        return pass_row.barcode


def _shown(till: Till, code: str) -> str | None:
    out = till.scan(code=code)
    return out["coupon"]["title"] if out["coupon"]["usable_now"] else None


def test_rollover_skips_offers_the_member_can_no_longer_use(client, runtime, settings):  # type: ignore[no-untyped-def]
    cafe = shop(runtime, settings, "offers", {"rollover": True})
    ada = join(runtime, settings, cafe)
    # In the order rollover reads them (no start date: by id).
    first = _offer(runtime, cafe, "first")
    _offer(runtime, cafe, "second")
    _offer(runtime, cafe, "withdrawn", active=False)
    _offer(runtime, cafe, "ended", valid_until=utcnow() - timedelta(days=1))
    _offer(runtime, cafe, "sold-out", total_cap=5, redeemed_count=5)
    _offer(runtime, cafe, "last")
    till = Till(client, cafe["key"])
    card = _coupon_pass(runtime, settings, cafe, first, ada["member_id"])

    out = till.scan(code=card, action="redeem_coupon")
    assert out["rolled_over_to_coupon"] is not None
    assert _shown(till, card) == "second"
    # "second" used: "first" is the member's already (one per customer), the next three
    # cannot be used by anyone: "last" is what the card moves on to.
    out = till.scan(code=card, action="redeem_coupon")
    assert out["rolled_over_to_coupon"] is not None
    assert _shown(till, card) == "last"
    # Nothing left this member can use: the card keeps its used coupon, no new one.
    out = till.scan(code=card, action="redeem_coupon")
    assert out["rolled_over_to_coupon"] is None
    assert _shown(till, card) is None
    with runtime.transaction(cafe["merchant_id"]) as s:
        offers = {o.id: o.title for o in s.scalars(select(Offer))}
        held = [offers[c.offer_id] for c in s.scalars(select(Coupon).order_by(Coupon.id))]
        assert held == ["first", "second", "last"]
        assert s.scalars(select(Pass.coupon_id).where(Pass.barcode == card)).one() is not None


def test_rollover_skips_an_offer_the_member_already_holds(client, runtime, settings):  # type: ignore[no-untyped-def]
    cafe = shop(runtime, settings, "offers", {"rollover": True})
    ada = join(runtime, settings, cafe)
    bo = join(runtime, settings, cafe, name="Bo")
    first = _offer(runtime, cafe, "first")
    second = _offer(runtime, cafe, "second")
    till = Till(client, cafe["key"])
    # Ada was sent both coupons; Bo only the first.
    ada_first = _coupon_pass(runtime, settings, cafe, first, ada["member_id"])
    _coupon_pass(runtime, settings, cafe, second, ada["member_id"])
    bo_first = _coupon_pass(runtime, settings, cafe, first, bo["member_id"])
    # Ada's second coupon is still in her wallet: a second copy would double its uses.
    assert till.scan(code=ada_first, action="redeem_coupon")["rolled_over_to_coupon"] is None
    assert till.scan(code=bo_first, action="redeem_coupon")["rolled_over_to_coupon"] is not None
    assert _shown(till, bo_first) == "second"
