"""The pass landing page: the likely wallet first, the card's state, the Google redirect."""

# ruff: noqa: S314 - parses SVG this app just generated, not untrusted input
from __future__ import annotations

import xml.etree.ElementTree as ET

import factories
import pytest
from browser_support import ANDROID_UA, IPHONE_UA
from pkpass_check import verify_pkpass
from sqlalchemy import select

from walletpass.google import client as google_client
from walletpass.google import savelink
from walletpass.passes.models import Pass, PassStatus

DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def card(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Bean There")
        program = factories.program(s, shop, "stamps", slug="beans", name="Coffee Card")
        member = factories.member(s, program, name="Ada")
        member.stamps_balance = 3
        pass_row = factories.member_pass(s, settings, member)
        return pass_row.serial


@pytest.fixture
def google_on(runtime, monkeypatch):  # type: ignore[no-untyped-def]
    settings = runtime.settings.override(
        google_issuer_id="3388000000012345678", google_service_account_file="/dev/null"
    )
    monkeypatch.setattr(runtime, "settings", settings)
    return settings


def _buttons(html: str) -> list[str]:
    order = []
    for wallet in ("apple", "google"):
        at = html.find(f'data-wallet="{wallet}"')
        if at >= 0:
            order.append((at, wallet))
    return [w for _, w in sorted(order)]


@pytest.mark.usefixtures("google_on")
@pytest.mark.parametrize(
    ("ua", "expected"),
    [(IPHONE_UA, ["apple", "google"]), (ANDROID_UA, ["google", "apple"])],
)
def test_likely_wallet_comes_first(client, card, ua, expected):
    r = client.get(f"/p/{card}", headers={"User-Agent": ua})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert _buttons(html) == expected
    assert 'data-testid="page-qr"' not in html  # on a phone there is nothing to scan
    assert f'href="/p/{card}.pkpass"' in html
    assert f'href="/p/{card}/google"' in html
    assert r.headers["Cache-Control"] == "private, no-store"


@pytest.mark.usefixtures("google_on")
def test_desktop_gets_a_qr_of_this_page_and_both_buttons(client, card):
    html = client.get(f"/p/{card}", headers={"User-Agent": DESKTOP_UA}).get_data(as_text=True)
    assert _buttons(html) == ["apple", "google"]
    start = html.index("<svg")
    svg = ET.fromstring(html[start : html.index("</svg>") + 6])
    assert svg.find("{http://www.w3.org/2000/svg}title").text == (
        f"https://wallet.example.test/p/{card}"
    )


def _barcode_svg_data(html: str) -> str:
    """What the card's barcode on the page encodes (segno writes it into <title>)."""
    block = html[html.index('data-testid="member-barcode"') :]
    start = block.index("<svg")
    svg = ET.fromstring(block[start : block.index("</svg>") + 6])
    return svg.find("{http://www.w3.org/2000/svg}title").text


def _barcode(runtime, serial: str) -> str:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalars(select(Pass.barcode).where(Pass.serial == serial)).one()


def test_android_without_google_gets_the_barcode_first_and_the_card_file(
    client, runtime, card, settings
):
    assert not settings.google_enabled
    html = client.get(f"/p/{card}", headers={"User-Agent": ANDROID_UA}).get_data(as_text=True)
    number = _barcode(runtime, card)
    # No lone Apple button on an Android phone: the barcode to show at the till, the
    # number as text, and the .pkpass as a plain download that Android wallets import.
    assert _buttons(html) == []
    assert _barcode_svg_data(html) == number
    assert f'<strong data-testid="member-number">{number}</strong>' in html
    assert html.index('data-testid="member-barcode"') < html.index('data-testid="card-state"')
    download = html.index('data-testid="pkpass-download"')
    assert f'href="/p/{card}.pkpass"' in html[download - 200 : download + 300]
    assert "Recent Android wallet apps import it" in html
    assert client.get(f"/p/{card}/google").status_code == 404
    assert client.get(f"/p/{card}.pkpass").mimetype == "application/vnd.apple.pkpass"


@pytest.mark.parametrize("ua", [IPHONE_UA, DESKTOP_UA, "", "curl/8.5"])
def test_every_other_browser_keeps_the_apple_button_first_and_still_sees_the_barcode(
    client, runtime, card, ua
):
    html = client.get(f"/p/{card}", headers={"User-Agent": ua}).get_data(as_text=True)
    assert _buttons(html) == ["apple"]
    assert 'data-testid="pkpass-download"' not in html
    # Never hidden, whatever the browser says it is (or nothing at all).
    assert _barcode_svg_data(html) == _barcode(runtime, card)
    assert html.index('data-wallet="apple"') < html.index('data-testid="member-barcode"')


@pytest.mark.usefixtures("google_on")
def test_with_google_on_android_gets_google_first_and_the_barcode_below(client, runtime, card):
    html = client.get(f"/p/{card}", headers={"User-Agent": ANDROID_UA}).get_data(as_text=True)
    assert _buttons(html) == ["google", "apple"]
    assert 'data-testid="pkpass-download"' not in html
    assert html.index('data-wallet="google"') < html.index('data-testid="member-barcode"')


def test_page_shows_the_cards_state(client, card):
    html = client.get(f"/p/{card}", headers={"User-Agent": IPHONE_UA}).get_data(as_text=True)
    assert "Coffee Card" in html
    assert "Hello Ada!" in html
    assert "3 of 10" in html
    assert "7 more stamps to go." in html
    assert html.count('class="pp-stamp on"') == 3


def test_anonymous_coupon_gets_the_same_page(client, runtime, settings):
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Bean There")
        serial = factories.coupon_pass(s, settings, shop, title="20% off").serial
    html = client.get(f"/p/{serial}", headers={"User-Agent": IPHONE_UA}).get_data(as_text=True)
    assert "20% off" in html
    assert "Discount" in html
    assert _buttons(html) == ["apple"]


def test_voided_pass_says_so_and_offers_no_buttons(client, runtime, card):
    with runtime.transaction() as s:
        s.scalars(select(Pass).where(Pass.serial == card)).one().status = PassStatus.VOIDED
    html = client.get(f"/p/{card}", headers={"User-Agent": IPHONE_UA}).get_data(as_text=True)
    assert "This card is no longer active." in html
    assert _buttons(html) == []
    assert 'data-testid="member-barcode"' not in html  # a dead card's barcode scans nothing


def test_unknown_serial_is_a_404_page(client):
    r = client.get("/p/doesnotexist")
    assert r.status_code == 404
    assert "Not found" in r.get_data(as_text=True)


def test_pkpass_link_downloads_a_valid_pass(client, card, settings, tmp_path):
    html = client.get(f"/p/{card}", headers={"User-Agent": IPHONE_UA}).get_data(as_text=True)
    assert f'href="/p/{card}.pkpass"' in html
    r = client.get(f"/p/{card}.pkpass")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    pass_json = verify_pkpass(r.data, settings.certs_dir / "ca.pem", tmp_path / "verify")
    assert pass_json["serialNumber"] == card


@pytest.mark.usefixtures("google_on")
def test_google_redirects_to_the_save_link_and_records_the_object(
    client, runtime, card, monkeypatch
):
    def fake_save_url(session, settings, client_, pass_row):  # type: ignore[no-untyped-def]
        pass_row.google_object_id = f"3388000000012345678.{pass_row.serial}"
        return "https://pay.google.com/gp/v/save/TOKEN"

    monkeypatch.setattr(google_client, "shared_client", lambda services, settings: object())
    monkeypatch.setattr(savelink, "save_url_for_pass", fake_save_url)
    r = client.get(f"/p/{card}/google")
    assert r.status_code == 302
    assert r.headers["Location"] == "https://pay.google.com/gp/v/save/TOKEN"
    with runtime.transaction() as s:
        assert s.scalars(select(Pass.google_object_id).where(Pass.serial == card)).one() == (
            f"3388000000012345678.{card}"
        )


@pytest.mark.usefixtures("google_on")
@pytest.mark.parametrize(
    ("error", "status"),
    [(savelink.SaveLinkError("too long"), 503), (google_client.GooglePermanent("bad"), 502)],
)
def test_google_failures_are_friendly_pages(client, runtime, card, monkeypatch, error, status):
    def failing(session, settings, client_, pass_row):  # type: ignore[no-untyped-def]
        pass_row.google_object_id = "should-not-stick"
        raise error

    monkeypatch.setattr(google_client, "shared_client", lambda services, settings: object())
    monkeypatch.setattr(savelink, "save_url_for_pass", failing)
    r = client.get(f"/p/{card}/google")
    assert r.status_code == status
    assert "Google Wallet" in r.get_data(as_text=True)
    if status == 503:
        assert r.headers["Retry-After"] == "60"
    with runtime.transaction() as s:
        assert s.scalars(select(Pass.google_object_id).where(Pass.serial == card)).one() is None


@pytest.mark.usefixtures("google_on")
def test_google_for_unknown_serial_is_404(client):
    assert client.get("/p/nope/google").status_code == 404


@pytest.mark.parametrize("lang", ["en", "el", "zh-Hans", "zh-Hant"])
def test_a_coupons_page_words_its_discount_as_its_pass_does(client, runtime, settings, lang):
    from walletpass.cards.variables import pass_variables

    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Bean There")
        row = factories.coupon_pass(
            s, settings, shop, title="Autumn", discount={"type": "percent", "value": 12.5}
        )
        serial = row.serial
        on_pass = pass_variables(s, row, settings, lang=lang)["coupon_discount"]
    html = client.get(f"/p/{serial}?lang={lang}", headers={"User-Agent": IPHONE_UA})
    page = html.get_data(as_text=True)
    assert on_pass in page
    # 12.5 % stays 12.5 % (Babel's percent format rounded the page's to "13%").
    assert ("12,5%" if lang == "el" else "12.5%") in on_pass
