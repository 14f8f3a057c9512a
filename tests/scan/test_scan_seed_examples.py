"""The seed examples of the loyalty brief, end to end through POST /api/v1/scans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from scan_helpers import CAFE_POINTS, STAMPS, TIERS, Till, join, reward, shop
from sqlalchemy import func, select

from walletpass.loyalty import ledger, purchases
from walletpass.loyalty.ledger import ledger_balance
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.loyalty.sweeps import sweep_merchant
from walletpass.scan.models import Scan


def assert_ledger_matches(runtime, member_id):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        member = s.get(Member, member_id)
        assert (member.points_balance, member.stamps_balance) == ledger_balance(s, member_id)
        return member


def _set_clock(monkeypatch, moment):  # type: ignore[no-untyped-def]
    """Run the till at ``moment``: a purchase reads its time in loyalty.purchases, its
    entry is written at the time loyalty.ledger reads."""
    for module in (ledger, purchases):
        monkeypatch.setattr(module, "utcnow", lambda: moment)


def test_cafe_one_point_per_100_and_a_free_coffee_at_10(client, runtime, settings):
    cafe = shop(runtime, settings, "points", CAFE_POINTS)
    coffee = reward(runtime, cafe, "Free coffee", 10)
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    out = till.scan(code=card["code"], action="purchase", amount="1050", receipt_id="r1")
    assert (out["points_delta"], out["balance"]["points"]) == (10, 10)
    assert [r["name"] for r in out["redeemable"]["rewards"]] == ["Free coffee"]
    out = till.scan(code=card["code"], action="purchase", amount="99.99", receipt_id="r2")
    assert out["points_delta"] == 0  # floor per transaction
    out = till.scan(code=card["code"], action="redeem_reward", reward_id=coffee, receipt_id="r3")
    assert out["balance"]["points"] == 0
    assert len(out["redemption_code"]) == 10
    assert out["redeemable"]["rewards"] == []
    problem = till.scan(
        409, code=card["code"], action="redeem_reward", reward_id=coffee, receipt_id="r4"
    )
    assert problem["type"] == "/problems/insufficient-points"
    assert_ledger_matches(runtime, card["member_id"])


def test_ten_stamp_card_with_an_intermediate_reward(client, runtime, settings):
    cafe = shop(runtime, settings, "stamps", STAMPS)
    free = reward(runtime, cafe, "Free coffee", 10)
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    reached = []
    for i in range(10):
        out = till.scan(code=card["code"], action="stamp", receipt_id=f"s{i}")
        reached += out["rewards_reached"]
    assert out["balance"]["stamps"] == 10
    assert reached == ["Free cookie", "Free coffee"]
    assert out["member"]["stamps_goal"] == 10
    out = till.scan(code=card["code"], action="redeem_reward", reward_id=free, receipt_id="x")
    assert out["balance"]["stamps"] == 0
    # A retried stamp (same receipt) counts once.
    till.scan(code=card["code"], action="stamp", receipt_id="again")
    out = till.scan(code=card["code"], action="stamp", receipt_id="again")
    assert out["balance"]["stamps"] == 1
    assert out["replayed"] is True
    assert_ledger_matches(runtime, card["member_id"])


def test_silver_at_5000_gold_at_10000(client, runtime, settings):
    shop_info = shop(runtime, settings, "tiers", TIERS)
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])
    out = till.scan(code=card["code"], action="purchase", amount="4999.99", receipt_id="a")
    assert out["member"]["tier"] == "Member"
    out = till.scan(code=card["code"], action="purchase", amount="0.01", receipt_id="b")
    assert (out["member"]["tier"], out["member"]["tier_discount_percent"]) == ("Silver", "10")
    out = till.scan(code=card["code"], action="purchase", amount="5000", receipt_id="c")
    assert (out["member"]["tier"], out["member"]["tier_discount_percent"]) == ("Gold", "20")


def test_200_points_pay_20_off(client, runtime, settings):
    shop_info = shop(
        runtime, settings, "points", {"amount_per_point": "1", "points_to_currency": "0.10"}
    )
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])
    till.scan(code=card["code"], action="purchase", amount="250", receipt_id="earn")
    out = till.scan(
        code=card["code"], action="purchase", amount="50", receipt_id="pay", redeem_points=200
    )
    assert Decimal(out["discount"]) == Decimal("20.00")
    # 250 earned - 200 spent + 30 earned on the 30 actually paid.
    assert out["balance"]["points"] == 80
    problem = till.scan(
        409,
        code=card["code"],
        action="purchase",
        amount="50",
        receipt_id="too-much",
        redeem_points=500,
    )
    assert problem["type"] == "/problems/insufficient-points"
    assert_ledger_matches(runtime, card["member_id"])


def test_double_points_on_tuesday_afternoons(client, runtime, settings, monkeypatch):
    rules = {
        "amount_per_point": "1",
        "multipliers": [
            {"kind": "window", "days": ["tue"], "start": "16:00", "end": "18:00", "factor": "2"}
        ],
    }
    shop_info = shop(runtime, settings, "points", rules, timezone="Europe/Paris")
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])

    # Tuesday 2026-11-24, 16:30 in Paris is 15:30 UTC.
    _set_clock(monkeypatch, datetime(2026, 11, 24, 15, 30, tzinfo=UTC))
    assert (
        till.scan(code=card["code"], action="purchase", amount="10", receipt_id="in")[
            "points_delta"
        ]
        == 20
    )
    _set_clock(monkeypatch, datetime(2026, 11, 24, 14, 59, tzinfo=UTC))
    assert (
        till.scan(code=card["code"], action="purchase", amount="10", receipt_id="out")[
            "points_delta"
        ]
        == 10
    )


def test_birthday_bonus_once_a_year(client, runtime, settings):
    rules = {"amount_per_point": "1", "bonuses": {"birthday": 50, "birthday_mode": "month"}}
    shop_info = shop(runtime, settings, "points", rules)
    today = datetime.now(UTC).date()
    card = join(runtime, settings, shop_info, birthday=date(1990, today.month, 1))
    other = join(
        runtime, settings, shop_info, name="Bob", birthday=date(1990, (today.month % 12) + 1, 1)
    )
    for _ in range(2):
        with runtime.transaction(shop_info["merchant_id"]) as s:
            sweep_merchant(s, settings)
    assert assert_ledger_matches(runtime, card["member_id"]).points_balance == 50
    assert assert_ledger_matches(runtime, other["member_id"]).points_balance == 0


def test_referral_pays_both_sides_after_the_first_purchase(client, runtime, settings):
    rules = {"amount_per_point": "1", "bonuses": {"referral": {"referrer": 100, "referee": 50}}}
    shop_info = shop(runtime, settings, "points", rules)
    friend = join(runtime, settings, shop_info, name="Friend")
    newbie = join(
        runtime, settings, shop_info, name="Newbie", referral_code=friend["referral_code"]
    )
    till = Till(client, shop_info["key"])
    assert assert_ledger_matches(runtime, friend["member_id"]).points_balance == 0
    till.scan(code=newbie["code"], action="purchase", amount="10", receipt_id="first")
    till.scan(code=newbie["code"], action="purchase", amount="10", receipt_id="second")
    assert assert_ledger_matches(runtime, friend["member_id"]).points_balance == 100
    assert assert_ledger_matches(runtime, newbie["member_id"]).points_balance == 20 + 50


def test_lot_expiry_oldest_first(client, runtime, settings, monkeypatch):
    rules = {
        "amount_per_point": "1",
        "points_to_currency": "0.10",
        "expiry": {"mode": "lots", "months": 12, "warn_days": 30},
    }
    shop_info = shop(runtime, settings, "points", rules)
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])

    start = datetime(2025, 1, 10, 12, tzinfo=UTC)
    _set_clock(monkeypatch, start)
    till.scan(code=card["code"], action="purchase", amount="100", receipt_id="old")
    _set_clock(monkeypatch, start + timedelta(days=200))
    till.scan(code=card["code"], action="purchase", amount="40", receipt_id="new")
    # Spend 30: taken from the oldest lot (70 of it left).
    till.scan(code=card["code"], action="purchase", amount="0", receipt_id="spend", redeem_points=0)
    with runtime.transaction(shop_info["merchant_id"]) as s:
        member = s.get(Member, card["member_id"])
        ledger.post(s, member, kind="redeem", key="spend30", actor=ledger.SYSTEM, points=-30)
    # A month before the first lot expires: a warning, nothing expired.
    with runtime.transaction(shop_info["merchant_id"]) as s:
        sweep_merchant(s, settings, now=start + timedelta(days=340))
        member = s.get(Member, card["member_id"])
        assert member.points_balance == 110
        assert member.expiry_warned_for is not None
    with runtime.transaction(shop_info["merchant_id"]) as s:
        for _ in range(2):  # twice: the second run must change nothing
            sweep_merchant(s, settings, now=start + timedelta(days=370))
    member = assert_ledger_matches(runtime, card["member_id"])
    assert member.points_balance == 40


def test_rolling_expiry_renewed_by_activity(client, runtime, settings, monkeypatch):
    rules = {"amount_per_point": "1", "expiry": {"mode": "rolling", "months": 6}}
    shop_info = shop(runtime, settings, "points", rules)
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])

    start = datetime(2025, 1, 10, 12, tzinfo=UTC)
    _set_clock(monkeypatch, start)
    till.scan(code=card["code"], action="purchase", amount="100", receipt_id="a")
    _set_clock(monkeypatch, start + timedelta(days=150))
    till.scan(code=card["code"], action="purchase", amount="5", receipt_id="b")  # renews all
    with runtime.transaction(shop_info["merchant_id"]) as s:
        sweep_merchant(s, settings, now=start + timedelta(days=200))
    assert assert_ledger_matches(runtime, card["member_id"]).points_balance == 105
    with runtime.transaction(shop_info["merchant_id"]) as s:
        sweep_merchant(s, settings, now=start + timedelta(days=150 + 190))
    assert assert_ledger_matches(runtime, card["member_id"]).points_balance == 0


def test_partial_refunds_reverse_pro_rata_and_may_go_negative(client, runtime, settings):
    shop_info = shop(
        runtime, settings, "points", {"amount_per_point": "1", "points_to_currency": "0.10"}
    )
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])
    till.scan(code=card["code"], action="purchase", amount="100", receipt_id="R")
    out = till.scan(code=card["code"], action="refund", amount="30", receipt_id="R", refund_id="1")
    assert (out["points_delta"], out["balance"]["points"]) == (-30, 70)
    # Retried refund: counted once.
    assert (
        till.scan(code=card["code"], action="refund", amount="30", receipt_id="R", refund_id="1")[
            "balance"
        ]["points"]
        == 70
    )
    till.scan(code=card["code"], action="purchase", amount="0", receipt_id="pay", redeem_points=0)
    # Spend the rest, then refund everything left on R: the balance goes negative.
    with runtime.transaction(shop_info["merchant_id"]) as s:
        ledger.post(
            s,
            s.get(Member, card["member_id"]),
            kind="redeem",
            key="spent",
            actor=ledger.SYSTEM,
            points=-70,
        )
    out = till.scan(code=card["code"], action="refund", amount="70", receipt_id="R", refund_id="2")
    assert out["balance"]["points"] == -70
    problem = till.scan(
        422, code=card["code"], action="refund", amount="1", receipt_id="R", refund_id="3"
    )
    assert problem["type"] == "/problems/validation-error"
    assert (
        till.scan(404, code=card["code"], action="refund", amount="1", receipt_id="nope")["type"]
        == "/problems/unknown-receipt"
    )
    assert_ledger_matches(runtime, card["member_id"])


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        ({"code": "NOPE-NOPE-NOPE-NOPE", "action": "lookup"}, 404, "unknown-code"),
        ({"action": "purchase", "amount": "10"}, 422, "validation-error"),  # no receipt id
        ({"action": "purchase", "amount": "-1", "receipt_id": "x"}, 422, "validation-error"),
        ({"action": "teleport"}, 422, "validation-error"),
        ({"action": "redeem_reward", "reward_id": 999}, 404, "unknown-reward"),
        ({"action": "redeem_coupon"}, 422, "action-not-allowed"),
        (
            {"action": "purchase", "amount": "1", "receipt_id": "x", "surprise": 1},
            422,
            "validation-error",
        ),
    ],
)
def test_bad_scans_are_problems_and_change_nothing(
    client, runtime, settings, body, status, problem
):
    shop_info = shop(runtime, settings, "points", CAFE_POINTS)
    card = join(runtime, settings, shop_info)
    till = Till(client, shop_info["key"])
    out = till.scan(status, **{"code": card["code"], **body})
    assert out["type"] == f"/problems/{problem}"
    assert out["status"] == status
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert s.scalar(select(func.count()).select_from(Scan).where(Scan.result == "ok")) == 0


def test_lookup_answers_member_balance_and_redeemables(client, runtime, settings):
    cafe = shop(runtime, settings, "points", CAFE_POINTS)
    reward(runtime, cafe, "Free coffee", 0)
    card = join(runtime, settings, cafe, name="Zoë")
    out = Till(client, cafe["key"]).scan(code=card["code"].lower().replace("-", " "))
    assert out["kind"] == "member"
    assert out["member"]["name"] == "Zoë"
    assert out["redeemable"]["rewards"][0]["name"] == "Free coffee"


def test_undo_the_last_scan(client, runtime, settings):
    cafe = shop(runtime, settings, "points", {"amount_per_point": "1"})
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    out = till.scan(code=card["code"], action="purchase", amount="42", receipt_id="oops")
    r = client.post(
        f"/api/v1/scans/{out['scan_id']}/undo", headers={"Authorization": f"Bearer {cafe['key']}"}
    )
    assert r.status_code == 200, r.json
    assert r.json["balance"]["points"] == 0
    member = assert_ledger_matches(runtime, card["member_id"])
    assert member.lifetime_spend == 0


def test_domain_events_reach_a_subscribed_crm_as_schema_valid_payloads(client, runtime, settings):
    """Every till action emits its event; each queued delivery matches the outbound schema."""
    from walletpass.crm import outbound, schemas
    from walletpass.crm.models import WebhookDelivery
    from walletpass.events import PUBLISH_KIND
    from walletpass.jobs.worker import Worker

    cafe = shop(runtime, settings, "points", CAFE_POINTS)
    coffee = reward(runtime, cafe, "Free coffee", 10)
    with runtime.transaction(cafe["merchant_id"]) as s:
        outbound.create_endpoint(
            s,
            settings,
            merchant_id=cafe["merchant_id"],
            url="https://crm.example.test/hook",
            events=["*"],
        )
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    till.scan(code=card["code"], action="purchase", amount="1000", receipt_id="e1")
    till.scan(code=card["code"], action="redeem_reward", reward_id=coffee, receipt_id="e2")
    # The events are queued with the scans; a worker writes their deliveries.
    Worker(runtime, kinds=[PUBLISH_KIND]).run_until_idle()
    with runtime.transaction() as s:
        deliveries = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        types = {d.event_type for d in deliveries}
        assert {"member.created", "points.changed", "scan.recorded", "reward.redeemed"} <= types
        for d in deliveries:
            assert schemas.field_errors("outbound", d.event_type, d.payload) == [], d.event_type


def test_the_answer_lists_a_reward_only_while_it_is_in_stock(client, runtime, settings):
    cafe = shop(runtime, settings, "points", CAFE_POINTS)
    last_mug = reward(runtime, cafe, "Last mug", 10, stock=1)
    reward(runtime, cafe, "Coffee", 20)
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    out = till.scan(code=card["code"], action="purchase", amount="3000", receipt_id="r1")
    assert [r["name"] for r in out["redeemable"]["rewards"]] == ["Last mug", "Coffee"]
    # Its last one goes in this very scan: the answer already knows (20 points left).
    out = till.scan(code=card["code"], action="redeem_reward", reward_id=last_mug, receipt_id="r2")
    assert out["balance"]["points"] == 20
    assert [r["name"] for r in out["redeemable"]["rewards"]] == ["Coffee"]
    assert_ledger_matches(runtime, card["member_id"])
