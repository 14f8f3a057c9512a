"""No English left on the customer pages: each rendered in the pseudo-language en-XA.

Every text that went through a catalogue comes out marked (tests/pseudo_support.py); what
the test allows is only the shop's own data (names, titles, links, the card number), the
languages' own names in the switcher, and month abbreviations, which CLDR writes for en-XA
as for English (the page's dates go through Babel, not through a catalogue).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import factories
import pytest
from babel.dates import get_month_names
from pseudo_support import english_left
from sqlalchemy import select

from walletpass.app import create_app
from walletpass.db import utcnow
from walletpass.i18n.languages import PSEUDO, languages, native_name
from walletpass.loyalty.models import Member
from walletpass.offers.models import Offer

PUBLIC = "https://wallet.example.test"
MONTHS = [str(m) for m in get_month_names("abbreviated", locale="en").values()]
SHOP_DATA = [
    "Bean There",
    "Coffee Card",
    "Bean Club",
    "Bean Club Plus",
    "Ada",
    "Bo",
    "Gold",
    "Bronze",
    "Free refills",
    "Free croissant",
    "With any coffee.",
    "One per customer.",
    "Early bird",
]


@pytest.fixture
def pseudo_client(runtime):  # type: ignore[no-untyped-def]
    app = create_app(
        runtime.settings.override(pseudo_locale=True), runtime=runtime, start_worker=False
    )
    client = app.test_client()
    # Picked once in the switcher, then kept by its cookie, as a visitor's choice is.
    client.get(f"/p/none?lang={PSEUDO}")
    return client


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There", currency="EUR")
        stamps = factories.program(s, merchant, "stamps", slug="coffee", name="Coffee Card")
        ada = factories.member(s, stamps, name="Ada", language=PSEUDO)
        ada.stamps_balance = 3
        tiers = factories.program(
            s,
            merchant,
            "tiers",
            slug="club",
            name="Bean Club",
            rules={
                "amount_per_point": "1",
                "levels": [
                    {"name": "Bronze", "min_spend": "0", "discount_percent": "5"},
                    {"name": "Gold", "min_spend": "100", "discount_percent": "10"},
                ],
            },
        )
        bo = factories.member(s, tiers, name="Bo", language=PSEUDO, tier="Bronze")
        bo.points_balance = 1234
        bo.lifetime_spend = Decimal("40")
        factories.program(
            s,
            merchant,
            "membership",
            slug="plus",
            name="Bean Club Plus",
            rules={"paid": True, "price": "30", "validity_months": 12, "benefits": "Free refills"},
        )
        coupon = factories.coupon_pass(
            s,
            settings,
            merchant,
            title="Free croissant",
            discount={"type": "amount", "value": "2.5"},
            valid_until=utcnow() + timedelta(days=30),
            terms="One per customer.",
        )
        s.add(
            Offer(
                merchant_id=merchant.id,
                program_id=stamps.id,
                slug="spring",
                title="Free croissant",
                description="With any coffee.",
                terms="One per customer.",
                valid_from=utcnow() - timedelta(days=1),
                valid_until=utcnow() + timedelta(days=30),
            )
        )
        s.add(
            Offer(
                merchant_id=merchant.id,
                slug="early",
                title="Early bird",
                valid_from=utcnow() + timedelta(days=3),
            )
        )
        s.flush()
        return {
            "stamps": factories.member_pass(s, settings, ada),
            "tiers": factories.member_pass(s, settings, bo),
            "coupon": coupon,
        }


def _left(html: str, *extra: str) -> list[str]:
    allowed = [*SHOP_DATA, *MONTHS, *(native_name(lang) for lang in languages()), *extra]
    return english_left(html, allowed, html=True)


def _page(client, url: str, status: int = 200, **kw) -> str:  # type: ignore[no-untyped-def]
    response = client.get(url, **kw) if "data" not in kw else client.post(url, **kw)
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:500]
    assert '<html lang="en-XA">' in html
    return html


def test_join_pages_and_their_errors_leave_no_english(pseudo_client, shop):
    for slug in ("coffee", "club", "plus"):
        assert _left(_page(pseudo_client, f"/join/{slug}")) == [], slug
    # Every field's error at once: an empty name, a bad email, phone and birthday.
    bad = {"name": "", "email": "nope", "phone": "12", "birthday": "3000-01-01"}
    html = _page(pseudo_client, "/join/coffee", 422, data=bad)
    assert html.count('class="wp-error"') == 4
    assert _left(html) == []
    html = _page(pseudo_client, "/join/coffee", 422, data={"name": "Ada", "email": ""})
    assert _left(html) == []


def test_card_pages_leave_no_english(pseudo_client, shop, runtime):
    for kind, pass_row in shop.items():
        html = _page(pseudo_client, f"/p/{pass_row.serial}")
        assert 'data-testid="member-barcode"' in html
        # A computer's page also carries a QR code of its own link (named in its <title>).
        assert _left(html, pass_row.barcode, f"{PUBLIC}/p/{pass_row.serial}") == [], kind
    # The money, the percentage and the next level are on the page, written by Babel.
    tiers_html = _page(pseudo_client, f"/p/{shop['tiers'].serial}")
    assert "€60.00" in tiers_html
    assert "1,234" in tiers_html
    assert "€2.50" in _page(pseudo_client, f"/p/{shop['coupon'].serial}")


def test_an_android_card_page_without_google_leaves_no_english(pseudo_client, shop):
    android = {"User-Agent": "Mozilla/5.0 (Linux; Android 15; Pixel 9) Mobile"}
    pass_row = shop["stamps"]
    html = _page(pseudo_client, f"/p/{pass_row.serial}", headers=android)
    assert 'data-testid="pkpass-download"' in html
    assert _left(html, pass_row.barcode) == []


def test_claim_message_and_flyer_pages_leave_no_english(pseudo_client, shop):
    assert _left(_page(pseudo_client, "/offers/spring/claim")) == []
    html = _page(pseudo_client, "/offers/spring/claim", 400, data={"email": "a@b.test"})
    assert _left(html) == []  # no CSRF token: the form again, with why
    # The message page: an offer not started yet, and a link to nothing.
    assert _left(_page(pseudo_client, "/offers/early/claim")) == []
    assert _left(_page(pseudo_client, "/p/doesnotexist", 404)) == []
    assert _left(_page(pseudo_client, "/join/coffee/flyer?src=a%20b", 400)) == []
    link = f"{PUBLIC}/join/coffee?src=flyer"
    assert _left(_page(pseudo_client, "/join/coffee/flyer"), link) == []
    link = f"{PUBLIC}/offers/spring/claim?src=flyer"
    assert _left(_page(pseudo_client, "/offers/spring/flyer"), link) == []


def test_a_customer_joining_in_the_pseudo_language_keeps_it(pseudo_client, shop, runtime):
    response = pseudo_client.post("/join/coffee", data={"name": "Cy", "email": "cy@example.test"})
    assert response.status_code == 303
    with runtime.transaction() as s:
        found = s.scalars(select(Member.language).where(Member.email == "cy@example.test"))
        assert found.one() == PSEUDO
    html = _page(pseudo_client, response.headers["Location"])
    assert re.search(r"⟦Ħḗŀŀǿ Cy!⟧", html)
