# ruff: noqa: RUF001 - the expected texts are Greek and Chinese, whose letters look Latin
"""A card speaks its member's language: the .pkpass a phone fetches and the Google object
carry the texts we write in it, with money in the shop's currency as the member's
language writes it (``4.600,00 €`` for a Greek reader, ``$4,600`` in Taiwan)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import factories
import pytest

from walletpass.cards.variables import pass_variables
from walletpass.db import utcnow
from walletpass.google.objects import build_pass_resources
from walletpass.loyalty.models import Reward
from walletpass.offers.models import Offer
from walletpass.offers.services import issue_coupon
from walletpass.passes.models import Pass
from walletpass.tenancy.models import Store

ISSUER = "3388000000012345678"
TIERS = {
    "amount_per_point": "1",
    "levels": [
        {"name": "Member", "min_spend": "0"},
        {"name": "Silver", "min_spend": "100", "discount_percent": "12.5"},
        {"name": "Gold", "min_spend": "5000", "discount_percent": "20"},
    ],
}


def _card(runtime, settings, *, currency: str, merchant_language: str, member_language: str):  # type: ignore[no-untyped-def]
    """A tiers card 4,600 short of Gold, Silver now, two rewards ready, an amount-off
    offer on it, and a coupon of the same shop for the same member."""
    with runtime.transaction() as s:
        merchant = factories.merchant(
            s, name="Kafeneio", currency=currency, language=merchant_language
        )
        s.add(
            Store(merchant_id=merchant.id, code="h", name="Harbour", latitude=37.9, longitude=23.6)
        )
        program = factories.program(s, merchant, "tiers", rules=TIERS, name="Club")
        member = factories.member(s, program, name="Eleni", language=member_language)
        member.tier = "Silver"
        member.lifetime_spend = Decimal(400)
        member.points_balance = 500
        for name in ("Espresso", "Baklava"):
            s.add(Reward(merchant_id=merchant.id, program_id=program.id, name=name, cost_points=50))
        s.add(
            Offer(
                merchant_id=merchant.id,
                program_id=program.id,
                slug=f"five-{merchant.id}",
                title="Autumn",
                overlay=True,
                discount={"type": "amount", "value": "5" if currency == "TWD" else "5.00"},
                valid_from=utcnow() - timedelta(days=1),
            )
        )
        card = factories.member_pass(s, settings, member)
        offer = Offer(
            merchant_id=merchant.id,
            slug=f"ten-{merchant.id}",
            title="Ten",
            discount={"type": "percent", "value": "12.5"},
        )
        s.add(offer)
        s.flush()
        _, coupon = issue_coupon(s, settings, offer, member_id=member.id)
        return {"merchant_id": merchant.id, "card": card.id, "coupon": coupon.id}


def _pkpass(client, runtime, merchant_id: int, pass_id: int) -> tuple[dict[str, Any], set[str]]:  # type: ignore[no-untyped-def]
    """pass.json and the file names of the .pkpass a phone fetches."""
    with runtime.transaction(merchant_id) as s:
        p = s.get(Pass, pass_id)
        assert p is not None
        path, token = f"/apple/v1/passes/{p.pass_type_id}/{p.serial}", p.auth_token
    r = client.get(path, headers={"Authorization": f"ApplePass {token}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return json.loads(z.read("pass.json")), set(z.namelist())


def _google(runtime, settings, merchant_id: int, pass_id: int):  # type: ignore[no-untyped-def]
    google = settings.override(google_issuer_id=ISSUER, google_service_account_file="/dev/null")
    with runtime.transaction(merchant_id) as s:
        p = s.get(Pass, pass_id)
        assert p is not None
        return build_pass_resources(s, google, p, pass_variables(s, p, google))


def _values(pass_json: dict[str, Any]) -> dict[str, Any]:
    style = pass_json.get("storeCard") or pass_json["coupon"]
    return {f["key"]: f["value"] for group in style.values() for f in group}


def _modules(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {m["id"]: (m["header"], m["body"]) for m in body["textModulesData"]}


def test_a_greek_member_of_a_euro_shop_reads_greek_and_greek_euros(client, runtime, settings):
    shop = _card(runtime, settings, currency="EUR", merchant_language="el", member_language="el")
    pass_json, files = _pkpass(client, runtime, shop["merchant_id"], shop["card"])
    values = _values(pass_json)
    assert values["next_tier"] == "4.600,00\u00a0€ για Gold"
    assert values["discount"] == "12,5%"
    assert values["offer"] == "Έκπτωση 5,00\u00a0€"
    assert values["reward"] == "Espresso και Baklava"
    assert values["terms"] == "Εκδίδεται από Kafeneio."
    assert pass_json["locations"][0]["relevantText"] == "Είστε κοντά: Harbour"
    # Wallet translates the labels itself, from the .lproj of the phone's language.
    assert {"el.lproj/pass.strings", "zh-Hans.lproj/pass.strings"} <= files

    coupon, _ = _pkpass(client, runtime, shop["merchant_id"], shop["coupon"])
    assert _values(coupon)["discount"] == "Έκπτωση 12,5%"

    google = _google(runtime, settings, shop["merchant_id"], shop["card"])
    obj = google.object_body
    assert obj["loyaltyPoints"]["label"] == "Πόντοι"
    assert obj["secondaryLoyaltyPoints"]["label"] == "Επίπεδο"
    modules = _modules(obj)
    assert modules["offer"] == ("Autumn", "Έκπτωση 5,00\u00a0€")
    assert modules["rewards"] == ("Ανταμοιβές", "Espresso και Baklava")
    assert modules["tier"] == ("Προνόμια βαθμίδας", "12,5%")
    assert modules["terms"] == ("Όροι", "Εκδίδεται από Kafeneio.")
    offer = _google(runtime, settings, shop["merchant_id"], shop["coupon"])
    assert _modules(offer.object_body)["discount"] == ("Έκπτωση", "Έκπτωση 12,5%")
    assert offer.class_body["shortTitle"] == "Έκπτωση 12,5%"


def test_a_taiwanese_member_reads_traditional_chinese_and_whole_dollars(client, runtime, settings):
    shop = _card(
        runtime, settings, currency="TWD", merchant_language="zh-Hant", member_language="zh-Hant"
    )
    pass_json = _pkpass(client, runtime, shop["merchant_id"], shop["card"])[0]
    values = _values(pass_json)
    assert values["next_tier"] == "再消費 $4,600 升級 Gold"
    assert values["offer"] == "折抵 $5"
    assert values["reward"] == "Espresso和Baklava"
    assert values["terms"] == "由 Kafeneio 發行。"
    assert pass_json["locations"][0]["relevantText"] == "Harbour 就在附近"
    obj = _google(runtime, settings, shop["merchant_id"], shop["card"]).object_body
    assert obj["loyaltyPoints"]["label"] == "點數"
    assert _modules(obj)["offer"] == ("Autumn", "折抵 $5")
    assert _modules(obj)["tier"] == ("等級權益", "12.5%")


def test_the_shared_google_class_speaks_the_shop_s_language(client, runtime, settings):
    """The class of an offer is every holder's: a Greek member's coupon of an English-
    speaking shop sends the class in English, its own object in Greek."""
    shop = _card(runtime, settings, currency="EUR", merchant_language="en", member_language="el")
    offer = _google(runtime, settings, shop["merchant_id"], shop["coupon"])
    assert offer.class_body["shortTitle"] == "12.5% off"
    assert _modules(offer.object_body)["discount"] == ("Έκπτωση", "Έκπτωση 12,5%")
    card = _google(runtime, settings, shop["merchant_id"], shop["card"])
    terms = [m for m in card.class_body["textModulesData"] if m["id"] == "terms"]
    assert terms[0]["body"] == "Issued by Kafeneio."
    assert _modules(card.object_body)["terms"] == ("Όροι", "Εκδίδεται από Kafeneio.")
    # The class's fixed texts carry every language; Google picks the phone's.
    how = next(m for m in card.class_body["textModulesData"] if m["id"] == "how_to_use")
    assert {v["language"] for v in how["localizedHeader"]["translatedValues"]} == {
        "el",
        "zh-Hans",
        "zh-Hant",
    }


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Payment due (€30.00): pay at the counter to start your membership."),
        (
            "el",
            "Εκκρεμεί πληρωμή (30,00\u00a0€): πληρώστε στο ταμείο για να ξεκινήσει η συνδρομή σας.",
        ),
        ("zh-Hans", "待付款（€30.00）：请到柜台付款以开通会员资格。"),
        # A tag stored as a browser sent it reads as ours; one we do not speak, as English.
        ("zh-TW", "尚待付款（€30.00）：請至櫃台付款以啟用會籍。"),
        ("fr", "Payment due (€30.00): pay at the counter to start your membership."),
    ],
)
def test_a_membership_notice_is_in_the_member_s_language(
    client, runtime, settings, language, expected
):
    with runtime.transaction() as s:
        merchant = factories.merchant(s, currency="EUR")
        program = factories.program(
            s, merchant, "membership", rules={"paid": True, "price": "30", "validity_months": 12}
        )
        member = factories.member(s, program, language=language)
        card = factories.member_pass(s, settings, member)
        ids = (merchant.id, card.id)
    pass_json, _ = _pkpass(client, runtime, *ids)
    assert _values(pass_json)["expiry"] == expected


def test_google_shows_a_membership_s_end_on_the_shop_s_calendar_day(runtime, settings):
    """A Taipei card ending at local midnight (16:00 UTC the day before) reads as its own
    day on Google, which shows the date as written, in the member's language."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s, timezone="Asia/Taipei", currency="TWD")
        program = factories.program(s, merchant, "membership")
        member = factories.member(s, program, language="zh-Hant")
        member.membership_valid_until = datetime(2031, 1, 1, tzinfo=ZoneInfo("Asia/Taipei"))
        card = factories.member_pass(s, settings, member)
        ids = (merchant.id, card.id)
    body = _google(runtime, settings, *ids).object_body
    assert _modules(body)["membership"] == ("有效期至", "2031年1月1日")
