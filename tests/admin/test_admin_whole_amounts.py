# ruff: noqa: RUF001 - the expected messages are Greek and Chinese
"""The admin's forms refuse an amount the shop's currency cannot hold (TWD and JPY have no
minor unit), under the field, in the page's language, and save nothing."""

from __future__ import annotations

import json

from markupsafe import escape
from sqlalchemy import func, select
from test_admin_support import make_shop, post, sign_in

from walletpass.loyalty.models import Program
from walletpass.offers.models import Offer
from walletpass.tenancy.models import Merchant

PROGRAM = {
    "name": "Tea Club",
    "slug": "tea-club",
    "kind": "tiers",
    "template": "points_tiers",
    "background": "#3b2418",
    "foreground": "#ffffff",
    "label": "#e9c8a0",
}
OFFER = {
    "title": "Ten off",
    "slug": "ten-off",
    "discount_type": "amount",
    "discount_value": "10.5",
    "uses_per_coupon": "1",
    "active": "on",
}


def _taiwanese_shop(runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    with runtime.transaction(shop.merchant_id) as s:
        merchant = s.get(Merchant, shop.merchant_id)
        assert merchant is not None
        merchant.currency, merchant.timezone = "TWD", "Asia/Taipei"
    return shop


def _count(runtime, merchant_id, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction(merchant_id) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_a_tier_threshold_with_decimals_is_refused_under_its_field(client, runtime):
    shop = _taiwanese_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    rules = {
        "amount_per_point": "30",
        "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "999.5"}],
    }
    r = post(client, "/admin/programs/new", {**PROGRAM, "rules": json.dumps(rules)})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'data-field="rules.levels.1.min_spend"' in body
    assert str(escape("TWD has no minor unit: enter a whole amount, not 999.5.")) in body
    assert _count(runtime, shop.merchant_id, Program) == 1
    # In Greek, for a Greek browser, the number written as Greek writes it.
    r = post(
        client,
        "/admin/programs/new",
        {**PROGRAM, "rules": json.dumps(rules)},
        headers={"Accept-Language": "el-GR"},
    )
    assert r.status_code == 422
    assert "Το TWD δεν έχει υποδιαιρέσεις: δώστε ακέραιο ποσό, όχι 999,5." in r.get_data(
        as_text=True
    )
    rules["levels"][1]["min_spend"] = "1000"
    assert (
        post(client, "/admin/programs/new", {**PROGRAM, "rules": json.dumps(rules)}).status_code
        == 302
    )
    assert _count(runtime, shop.merchant_id, Program) == 2


def test_an_amount_off_with_decimals_is_refused_under_its_field(client, runtime):
    shop = _taiwanese_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    r = post(client, "/admin/offers/new", OFFER, headers={"Accept-Language": "zh-TW"})
    assert r.status_code == 422
    assert "TWD 沒有小數位：請輸入整數金額，而非 10.5。" in r.get_data(as_text=True)
    assert _count(runtime, shop.merchant_id, Offer) == 0
    assert post(client, "/admin/offers/new", {**OFFER, "discount_value": "10"}).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        offer = s.scalars(select(Offer)).one()
        assert offer.discount["type"] == "amount"
        offer_id = offer.id
    r = post(client, f"/admin/offers/{offer_id}", {**OFFER, "discount_value": "9.99"})
    assert r.status_code == 422
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Offer, offer_id).discount == offer.discount  # type: ignore[union-attr]
