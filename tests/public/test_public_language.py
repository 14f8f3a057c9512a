"""The customer pages in the reader's language: which one, what the joining customer keeps,
and numbers, dates and money as that reader writes them in the shop's currency."""

# ruff: noqa: RUF001 - Greek and Chinese texts are what these tests read

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factories
import pytest
from sqlalchemy import select

from walletpass.db import utcnow
from walletpass.loyalty.models import Member
from walletpass.offers.models import Offer

TAIWAN = {"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.8"}
GREECE = {"Accept-Language": "el-GR,el;q=0.9"}


def _lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


@pytest.fixture
def greek_shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Kafeneio", currency="EUR", language="el")
        program = factories.program(
            s,
            shop,
            "tiers",
            slug="club",
            name="Kafeneio Club",
            rules={
                "amount_per_point": "1",
                "levels": [
                    {"name": "Bronze", "min_spend": "0", "discount_percent": "5"},
                    {"name": "Gold", "min_spend": "5000", "discount_percent": "10"},
                ],
            },
        )
        member = factories.member(s, program, name="Eleni", language="el", tier="Bronze")
        member.points_balance = 4600
        member.lifetime_spend = Decimal("400")
        offer = Offer(
            merchant_id=shop.id,
            slug="spring",
            title="Freddo",
            valid_until=datetime(2031, 3, 31, 12, tzinfo=UTC),
        )
        s.add(offer)
        return factories.member_pass(s, settings, member).serial


@pytest.fixture
def taiwan_shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        shop = factories.merchant(
            s, name="Tea House", currency="TWD", language="zh-Hant", timezone="Asia/Taipei"
        )
        factories.program(
            s,
            shop,
            "membership",
            slug="tea",
            name="Tea Club",
            rules={"paid": True, "price": "1200", "validity_months": 6, "benefits": "10%"},
        )
        coupon = factories.coupon_pass(
            s,
            settings,
            shop,
            title="Bubble tea",
            discount={"type": "amount", "value": "50"},
            valid_until=datetime(2031, 12, 31, 10, tzinfo=UTC),
        )
        return coupon.serial


def test_a_taiwanese_browser_joins_in_traditional_chinese_and_keeps_it(
    client, runtime, taiwan_shop
):
    page = client.get("/join/tea", headers=TAIWAN).get_data(as_text=True)
    assert _lang(page) == "zh-Hant"
    assert '<label for="name">您的姓名</label>' in page
    # Whole dollars: TWD is paid without cents.
    assert "$1,200，效期 6 個月" in page
    assert 'aria-current="true">繁體中文</a>' in page
    response = client.post(
        "/join/tea", data={"name": "Mei", "email": "mei@example.test"}, headers=TAIWAN
    )
    assert response.status_code == 303
    with runtime.transaction() as s:
        language = s.scalars(select(Member.language).where(Member.name == "Mei")).one()
    assert language == "zh-Hant"


def test_the_switcher_choice_is_what_a_joining_customer_keeps(client, runtime, taiwan_shop):
    assert _lang(client.get("/join/tea?lang=el", headers=TAIWAN).get_data(as_text=True)) == "el"
    client.post("/join/tea", data={"name": "Nikos", "phone": "+886 912 345 678"}, headers=TAIWAN)
    with runtime.transaction() as s:
        language = s.scalars(select(Member.language).where(Member.name == "Nikos")).one()
    assert language == "el"


def test_a_browser_naming_none_of_ours_reads_the_shops_language(client, greek_shop):
    page = client.get("/join/club", headers={"Accept-Language": "fr-FR"}).get_data(as_text=True)
    assert _lang(page) == "el"
    assert "Θέλω την κάρτα μου" in page
    # A browser that names one of ours wins over the shop's.
    english = client.get("/join/club", headers={"Accept-Language": "en-GB"}).get_data(as_text=True)
    assert _lang(english) == "en"


def test_join_errors_are_in_the_page_language(client, greek_shop):
    response = client.post("/join/club", data={"name": "", "email": "nope"}, headers=GREECE)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Πείτε μας το όνομά σας." in html
    assert "Αυτό δεν μοιάζει με διεύθυνση email." in html
    assert "Ελέγξτε τα επισημασμένα πεδία." in html


def test_a_greek_card_page_writes_euros_and_numbers_as_greeks_do(client, greek_shop):
    html = client.get(f"/p/{greek_shop}", headers=GREECE).get_data(as_text=True)
    assert _lang(html) == "el"
    assert "Γεια σας, Eleni!" in html
    assert "<dt>Πόντοι</dt><dd>4.600</dd>" in html
    assert "<dt>Επίπεδο</dt><dd>Bronze (έκπτωση 5%)</dd>" in html
    assert "<dt>Επόμενο επίπεδο</dt><dd>4.600,00\u00a0€ για Gold</dd>" in html
    assert "Δείξτε το στο ταμείο" in html
    # The same card read in English: the page's language, not the member's.
    english = client.get(f"/p/{greek_shop}?lang=en").get_data(as_text=True)
    assert "<dt>Next level</dt><dd>€4,600.00 to Gold</dd>" in english


def test_a_taiwanese_coupon_page_writes_dates_and_whole_dollars(client, taiwan_shop):
    html = client.get(f"/p/{taiwan_shop}", headers=TAIWAN).get_data(as_text=True)
    assert "<dt>優惠</dt><dd>折抵 $50</dd>" in html
    assert "<dt>有效期間</dt><dd>有效期至 2031年12月31日。</dd>" in html


def test_offer_flyer_and_claim_page_in_greek(client, greek_shop):
    flyer = client.get("/offers/spring/flyer", headers=GREECE).get_data(as_text=True)
    assert _lang(flyer) == "el"
    assert "Εκτύπωση φυλλαδίου" in flyer
    assert "Ισχύει έως 31 Μαρ 2031." in flyer
    claim = client.get("/offers/spring/claim", headers=GREECE).get_data(as_text=True)
    assert "Θέλω το κουπόνι μου" in claim
    program_flyer = client.get("/join/club/flyer?lang=zh-Hans").get_data(as_text=True)
    assert _lang(program_flyer) == "zh-Hans"
    assert "<h1>加入Kafeneio Club</h1>" in program_flyer


def test_an_offer_not_started_says_its_day_in_the_shops_calendar(client, runtime, greek_shop):
    with runtime.transaction() as s:
        offer = s.scalars(select(Offer).where(Offer.slug == "spring")).one()
        offer.valid_from = utcnow() + timedelta(days=400)
        start = offer.valid_from
    html = client.get("/offers/spring/claim", headers=TAIWAN).get_data(as_text=True)
    assert "尚未開始" in html
    assert f"這項優惠將於 {start.year}年" in html
