"""The till page's refund and pay-with-points controls: the page offers them, and what
they post is a scan like POST /api/v1/scans' (refund with receipt_id and amount,
purchase with redeem_points), answered with the card's recent purchases to refund."""

# ruff: noqa: F811 - pytest fixtures imported by name are "redefined" as arguments
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from test_till_views import _sign_in, staff  # noqa: F401
from till_support import points_card  # noqa: F401


@pytest.fixture
def shop(points_card):  # type: ignore[no-untyped-def]
    """What ``staff`` signs in to."""
    return {"code": points_card}


def test_the_page_has_a_refund_and_a_pay_with_points_control(client, shop):  # type: ignore[no-untyped-def]
    assert _sign_in(client).status_code == 303
    html = client.get("/till/").get_data(as_text=True)
    for control in ('id="refund-form"', 'id="refund-receipt"', 'id="refund-amount"'):
        assert control in html
    assert re.search(r'<label for="redeem-points">Pay with points', html)
    assert 'id="redeem-points"' in html


def test_a_card_answers_with_its_recent_purchases_to_refund(staff, shop):  # type: ignore[no-untyped-def]
    code = shop["code"]
    for receipt, amount in (("r-1", "12.50"), ("r-2", "30.00"), ("r-3", "99.00")):
        r = staff(
            "/till/api/scan",
            {"code": code, "action": "purchase", "amount": amount, "receipt_id": receipt},
        )
        assert r.status_code == 200, r.json
    # r-3 was a mistake, undone; r-2 retried after a lost answer is still one purchase.
    assert staff(f"/till/api/scans/{r.json['scan_id']}/undo").status_code == 200
    staff(
        "/till/api/scan", {"code": code, "action": "purchase", "amount": "30", "receipt_id": "r-2"}
    )
    r = staff("/till/api/scan", {"code": code, "action": "lookup"})
    listed = [(p["receipt_id"], p["amount"]) for p in r.json["recent_purchases"]]
    assert listed == [("r-2", "30.00"), ("r-1", "12.50")]
    for purchase in r.json["recent_purchases"]:  # in the shop's time (Paris)
        at = datetime.fromisoformat(purchase["at"])
        offset = at.utcoffset()
        assert offset is not None
        assert offset == at.astimezone(ZoneInfo("Europe/Paris")).utcoffset()

    # The list's refund: part of r-2, as the API's refund takes it (pro rata: 15 of 30).
    r = staff(
        "/till/api/scan",
        {"code": code, "action": "refund", "receipt_id": "r-2", "amount": "15", "refund_id": "a"},
    )
    assert r.status_code == 200, r.json
    assert (r.json["points_delta"], r.json["balance"]["points"]) == (-15, 27)


def test_points_pay_part_of_a_purchase_at_the_till(staff, shop):  # type: ignore[no-untyped-def]
    code = shop["code"]
    staff("/till/api/scan", {"code": code, "action": "purchase", "amount": "50", "receipt_id": "a"})
    body = {"code": code, "action": "purchase", "amount": "10.00", "receipt_id": "b"}
    r = staff("/till/api/scan", {**body, "redeem_points": 20})
    assert r.status_code == 200, r.json
    # 20 points pay 2.00; the 8.00 paid earns 8: 50 - 20 + 8.
    assert (r.json["discount"], r.json["balance"]["points"]) == ("2.00", 38)
    # More points than the card holds are refused, and nothing changes.
    r = staff("/till/api/scan", {**body, "receipt_id": "c", "redeem_points": 500})
    assert (r.status_code, r.json["error"]) == (409, "insufficient-points")
    r = staff("/till/api/scan", {"code": code, "action": "lookup"})
    assert r.json["balance"]["points"] == 38
