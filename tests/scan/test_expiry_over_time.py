"""Points expiring over time, as the member and the till see them: the card's notice counts
every point that expires on the day it names, points an undone redemption gives back
expire when they would have, and only the customer's own activity renews a rolling
balance (a bonus or an expiry does not, nor does it hide that the customer stopped
coming)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scan_helpers import Till, join, reward, shop
from test_scan_seed_examples import _set_clock, assert_ledger_matches

from walletpass.i18n.formats import day as day_text
from walletpass.loyalty.expiry import add_months
from walletpass.loyalty.sweeps import sweep_merchant
from walletpass.tenancy.apikeys import create_api_key

LOTS = {
    "amount_per_point": "1",
    "points_to_currency": "0.10",
    "expiry": {"mode": "lots", "months": 12, "warn_days": 30},
}
NEW_YORK = ZoneInfo("America/New_York")


def _notice(client, serial: str) -> str:  # type: ignore[no-untyped-def]
    """The card's NOTICE field, as the phone shows it."""
    r = client.get(f"/p/{serial}.pkpass")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        card = json.loads(z.read("pass.json"))["storeCard"]
    fields = [f for group in card.values() if isinstance(group, list) for f in group]
    return next(f["value"] for f in fields if isinstance(f, dict) and f.get("key") == "expiry")


def _undo(client, key: str, scan_id: int) -> dict:  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/scans/{scan_id}/undo", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json


def _sweep(runtime, settings, monkeypatch, shop_info, now: datetime) -> None:  # type: ignore[no-untyped-def]
    _set_clock(monkeypatch, now)  # the entries it writes are dated then
    with runtime.transaction(shop_info["merchant_id"]) as s:
        sweep_merchant(s, settings, now=now)


def test_the_notice_counts_every_point_expiring_on_the_day_it_names(
    client, runtime, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    cafe = shop(runtime, settings, "points", LOTS, timezone="America/New_York")
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    # Three purchases a year ago, less ten days: two on one New York day (the second,
    # at 20:00, already the next day in UTC), one on the day after.
    day = (add_months(datetime.now(UTC), -12) + timedelta(days=10)).astimezone(NEW_YORK).date()
    for hour, amount, receipt in ((9, "100", "morning"), (20, "40", "evening")):
        _set_clock(monkeypatch, datetime.combine(day, time(hour), NEW_YORK).astimezone(UTC))
        till.scan(code=card["code"], action="purchase", amount=amount, receipt_id=receipt)
    next_day = datetime.combine(day + timedelta(days=1), time(12), NEW_YORK).astimezone(UTC)
    _set_clock(monkeypatch, next_day)
    till.scan(code=card["code"], action="purchase", amount="5", receipt_id="next-day")
    monkeypatch.undo()
    with runtime.transaction(cafe["merchant_id"]) as s:
        sweep_merchant(s, settings)
    named = date(day.year + 1, day.month, day.day)
    assert _notice(client, card["serial"]) == f"140 points expire on {day_text(named, 'en')}"


START = datetime(2025, 1, 10, 12, tzinfo=UTC)


def _bought_a_year_ago(client, runtime, settings, monkeypatch, cost: int):  # type: ignore[no-untyped-def]
    """A lots café with a reward of ``cost`` points, and a card that earned 100 points
    at START: (the café, the reward's id, the card, its till)."""
    cafe = shop(runtime, settings, "points", LOTS)
    gift = reward(runtime, cafe, "Gift", cost)
    card = join(runtime, settings, cafe)
    till = Till(client, cafe["key"])
    _set_clock(monkeypatch, START)
    till.scan(code=card["code"], action="purchase", amount="100", receipt_id="a")
    return cafe, gift, card, till


def test_points_given_back_by_an_undone_redemption_keep_their_expiry(
    client, runtime, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    cafe, mug, card, till = _bought_a_year_ago(client, runtime, settings, monkeypatch, 100)
    start = START
    _set_clock(monkeypatch, start + timedelta(days=300))
    redeemed = till.scan(code=card["code"], action="redeem_reward", reward_id=mug, receipt_id="m")
    assert _undo(client, cafe["key"], redeemed["scan_id"])["balance"]["points"] == 100
    # The purchase's points were due a year after it: they still are.
    _sweep(runtime, settings, monkeypatch, cafe, start + timedelta(days=370))
    assert till.scan(code=card["code"])["balance"]["points"] == 0
    assert_ledger_matches(runtime, card["member_id"])


def test_points_given_back_to_a_lot_that_expired_meanwhile_expire_too(
    client, runtime, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    cafe, scarf, card, till = _bought_a_year_ago(client, runtime, settings, monkeypatch, 60)
    end = add_months(START, 12)
    _set_clock(monkeypatch, end - timedelta(minutes=2))
    redeemed = till.scan(code=card["code"], action="redeem_reward", reward_id=scarf, receipt_id="s")
    # The sweep just after the end writes off the 40 left; then the scarf is undone.
    _sweep(runtime, settings, monkeypatch, cafe, end + timedelta(minutes=1))
    assert till.scan(code=card["code"])["balance"]["points"] == 0
    _set_clock(monkeypatch, end + timedelta(minutes=2))
    assert _undo(client, cafe["key"], redeemed["scan_id"])["balance"]["points"] == 60
    # The 60 came back to a lot past its end: the next sweep writes them off as well.
    _sweep(runtime, settings, monkeypatch, cafe, end + timedelta(hours=1))
    assert till.scan(code=card["code"])["balance"]["points"] == 0
    assert_ledger_matches(runtime, card["member_id"])


def test_a_bonus_or_an_expiry_is_not_the_customers_activity(client, runtime, settings, monkeypatch):  # type: ignore[no-untyped-def]
    rules = {
        "amount_per_point": "1",
        "expiry": {"mode": "rolling", "months": 6},
        "bonuses": {"birthday": 50, "birthday_mode": "day"},
    }
    cafe = shop(runtime, settings, "points", rules)
    start = START
    birthday = start + timedelta(days=150)
    card = join(runtime, settings, cafe, birthday=date(1990, birthday.month, birthday.day))
    till = Till(client, cafe["key"])
    with runtime.transaction(cafe["merchant_id"]) as s:
        _, read_key = create_api_key(s, merchant_id=cafe["merchant_id"], scope="read")

    def last_activity() -> str:
        r = client.get(
            f"/api/v1/members/{card['member_id']}",
            headers={"Authorization": f"Bearer {read_key}"},
        )
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.json["last_activity_at"]

    _set_clock(monkeypatch, start)
    till.scan(code=card["code"], action="purchase", amount="100", receipt_id="a")
    bought_at = last_activity()
    # The birthday bonus: the customer did nothing, the 100 points are not renewed.
    _sweep(runtime, settings, monkeypatch, cafe, birthday)
    assert till.scan(code=card["code"])["balance"]["points"] == 150
    assert last_activity() == bought_at
    # Six months after the purchase the 100 expire; the bonus keeps its own six months.
    _sweep(runtime, settings, monkeypatch, cafe, add_months(start, 6) + timedelta(hours=1))
    assert till.scan(code=card["code"])["balance"]["points"] == 50
    assert last_activity() == bought_at  # still a customer who stopped coming
    _sweep(runtime, settings, monkeypatch, cafe, add_months(birthday, 6) - timedelta(hours=1))
    assert till.scan(code=card["code"])["balance"]["points"] == 50
    _sweep(runtime, settings, monkeypatch, cafe, add_months(birthday, 6) + timedelta(hours=1))
    assert till.scan(code=card["code"])["balance"]["points"] == 0
    assert last_activity() == bought_at
    assert_ledger_matches(runtime, card["member_id"])
