"""Parallel scans: the exact-once guarantees a till depends on (real races on PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from scan_helpers import join, reward, shop
from sqlalchemy import func, select

from walletpass.loyalty.ledger import ledger_balance
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import issue_coupon

pytestmark = pytest.mark.postgres


def _parallel(app, key: str, bodies: list[dict]) -> list[tuple[int, dict]]:  # type: ignore[no-untyped-def]
    def one(body: dict) -> tuple[int, dict]:
        r = app.test_client().post(
            "/api/v1/scans", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        return r.status_code, r.json

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def _balance(runtime, member_id):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        member = s.get(Member, member_id)
        assert (member.points_balance, member.stamps_balance) == ledger_balance(s, member_id)
        return member.points_balance


def test_one_single_use_coupon_redeemed_50_times_at_once(app, runtime, settings):
    cafe = shop(runtime, settings, "offers", {})
    with runtime.transaction(cafe["merchant_id"]) as s:
        offer = Offer(
            merchant_id=cafe["merchant_id"],
            program_id=cafe["program_id"],
            slug="c50",
            title="Free croissant",
            uses_per_coupon=1,
        )
        s.add(offer)
        s.flush()
        coupon, pass_row = issue_coupon(s, settings, offer)
        code, coupon_id = pass_row.barcode, coupon.id
    results = _parallel(app, cafe["key"], [{"code": code, "action": "redeem_coupon"}] * 50)
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 409: 49}
    assert {body["type"] for status, body in results if status == 409} == {"/problems/coupon-used"}
    with runtime.transaction() as s:
        assert s.get(Coupon, coupon_id).uses == 1
        assert s.scalars(select(Offer.redeemed_count)).one() == 1


def test_same_receipt_50_times_at_once_is_one_entry(app, runtime, settings):
    cafe = shop(runtime, settings, "points", {"amount_per_point": "1"})
    card = join(runtime, settings, cafe)
    body = {"code": card["code"], "action": "purchase", "amount": "12.00", "receipt_id": "R-1"}
    results = _parallel(app, cafe["key"], [body] * 50)
    assert {status for status, _ in results} == {200}
    assert {out["balance"]["points"] for _, out in results} == {12}
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1
    assert _balance(runtime, card["member_id"]) == 12


def test_50_distinct_receipts_at_once_give_the_exact_balance(app, runtime, settings):
    cafe = shop(runtime, settings, "points", {"amount_per_point": "1"})
    card = join(runtime, settings, cafe)
    bodies = [
        {"code": card["code"], "action": "purchase", "amount": str(i + 1), "receipt_id": f"R{i}"}
        for i in range(50)
    ]
    results = _parallel(app, cafe["key"], bodies)
    assert {status for status, _ in results} == {200}
    assert _balance(runtime, card["member_id"]) == sum(range(1, 51))


def test_20_reward_redemptions_against_a_balance_for_3(app, runtime, settings):
    cafe = shop(runtime, settings, "points", {"amount_per_point": "1"})
    coffee = reward(runtime, cafe, "Coffee", 100)
    card = join(runtime, settings, cafe)
    _parallel(
        app,
        cafe["key"],
        [{"code": card["code"], "action": "purchase", "amount": "350", "receipt_id": "load"}],
    )
    bodies = [
        {
            "code": card["code"],
            "action": "redeem_reward",
            "reward_id": coffee,
            "receipt_id": f"redeem-{i}",
        }
        for i in range(20)
    ]
    statuses = Counter(status for status, _ in _parallel(app, cafe["key"], bodies))
    assert statuses == {200: 3, 409: 17}
    assert _balance(runtime, card["member_id"]) == 50
