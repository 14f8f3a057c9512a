"""The till page's times are the shop's: a New York shop's card valid until 02:00 UTC on
1 July reads 30 June at its counter, and the undo bar's clock is New York's."""

# ruff: noqa: F811 - pytest fixtures imported by name are "redefined" as arguments
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import factories
import pytest
from test_till_views import PASSWORD, staff  # noqa: F401

from walletpass.offers.models import Coupon, Offer
from walletpass.tenancy.users import create_user

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    """What ``staff`` signs in to: a New York shop with a club card and a points card."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bagels", timezone="America/New_York")
        club = factories.program(
            s, merchant, "membership", slug="club", rules={"paid": True, "price": "30.00"}
        )
        member = factories.member(
            s, club, name="Ada", membership_valid_until=datetime(2030, 7, 1, 2, 0, tzinfo=UTC)
        )
        club_code = factories.member_pass(s, settings, member).barcode
        points = factories.program(s, merchant, "points", slug="beans")
        grace = factories.member(s, points, name="Grace")
        points_code = factories.member_pass(s, settings, grace).barcode
        offer = Offer(
            merchant_id=merchant.id,
            slug="new-year",
            title="New year bagel",
            valid_until=datetime(2030, 1, 1, 3, 0, tzinfo=UTC),
        )
        s.add(offer)
        s.flush()
        s.add(Coupon(merchant_id=merchant.id, offer_id=offer.id, member_id=grace.id))
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        return {"club": club_code, "points": points_code}


def _new_york(value: str) -> datetime:
    """The time as sent, checked to be written in New York's offset at that moment."""
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == moment.astimezone(NEW_YORK).utcoffset(), value
    return moment


def test_membership_dates_are_the_shops(staff, shop):  # type: ignore[no-untyped-def]
    r = staff("/till/api/scan", {"code": shop["club"], "action": "lookup"})
    assert r.status_code == 200, r.json
    # 02:00 UTC on 1 July is 22:00 on 30 June in New York: the page shows "30 June".
    assert r.json["member"]["membership"]["valid_until"] == "2030-06-30T22:00:00-04:00"
    assert r.json["member"]["membership_valid_until"] == "2030-06-30T22:00:00-04:00"
    r = staff(
        "/till/api/membership-payment",
        {"code": shop["club"], "amount": "30.00", "receipt_id": "pay-1"},
    )
    assert r.status_code == 200, r.json
    assert r.json["membership"]["valid_until"] == "2031-06-30T22:00:00-04:00"


def test_coupon_dates_and_the_undo_window_are_the_shops(staff, shop):  # type: ignore[no-untyped-def]
    r = staff("/till/api/scan", {"code": shop["points"], "action": "lookup"})
    assert r.status_code == 200, r.json
    [coupon] = r.json["redeemable"]["coupons"]
    assert coupon["valid_until"] == "2029-12-31T22:00:00-05:00"

    before = datetime.now(UTC)
    r = staff(
        "/till/api/scan",
        {"code": shop["points"], "action": "purchase", "amount": "4.50", "receipt_id": "r1"},
    )
    assert r.status_code == 200, r.json
    scanned_at = _new_york(r.json["scanned_at"])
    assert before - timedelta(seconds=1) <= scanned_at <= datetime.now(UTC)
    # The undo bar reads "undo until" the shop's clock five minutes on.
    assert _new_york(r.json["undo_until"]) == scanned_at + timedelta(minutes=5)
    undone = staff(f"/till/api/scans/{r.json['scan_id']}/undo")
    assert undone.status_code == 200, undone.json
    assert _new_york(undone.json["undone_at"]) >= scanned_at
