"""Real headless Chromium on a phone-sized window: join from the QR link, get the card."""

# ruff: noqa: F811 - pytest fixtures imported by name are "redefined" as arguments
from __future__ import annotations

import factories
import pytest
from browser_support import ANDROID_UA, IPHONE_UA, browser, live_server, screenshot  # noqa: F401
from pkpass_check import verify_pkpass
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from walletpass.loyalty.models import Member

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("program")]


@pytest.fixture
def program(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Bean There")
        factories.program(
            s,
            shop,
            "stamps",
            slug="beans",
            name="Coffee Card",
            design={"background": "#5b3a29", "foreground": "#ffffff", "label": "#f3d9b1"},
        )


def _join(driver, live_server, name: str, email: str, *, shot: str | None = None) -> str:  # type: ignore[no-untyped-def]
    driver.get(f"{live_server.url}/join/beans?src=qr")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "email").send_keys(email)
    if shot:
        screenshot(driver, shot)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 10).until(ec.url_contains("/p/"))
    return driver.current_url.rsplit("/p/", 1)[1]


def _wallet_order(driver) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        a.get_attribute("data-wallet")
        for a in driver.find_elements(By.CSS_SELECTOR, "[data-wallet]")
    ]


def test_join_from_the_qr_link_on_an_iphone(
    live_server,
    browser,
    runtime,
    client,
    settings,
    tmp_path,
):
    driver = browser(user_agent=IPHONE_UA)
    # A bad submit first: the error shows next to the field and nothing is lost.
    driver.get(f"{live_server.url}/join/beans?src=qr")
    driver.find_element(By.ID, "name").send_keys("Ada Lovelace")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = WebDriverWait(driver, 10).until(
        ec.visibility_of_element_located((By.ID, "email-error"))
    )
    assert "email address or a phone number" in error.text
    assert driver.find_element(By.ID, "name").get_attribute("value") == "Ada Lovelace"

    serial = _join(driver, live_server, "Ada Lovelace", "ada@example.test", shot="join")
    assert _wallet_order(driver) == ["apple"]  # Google is not configured in tests
    state = driver.find_element(By.CSS_SELECTOR, "[data-testid=card-state]").text
    assert "0 of 10" in state
    screenshot(driver, "landing")
    with runtime.transaction() as s:
        member = s.scalars(select(Member)).one()
        assert (member.source, member.marketing_consent) == ("qr", False)
    href = driver.find_element(By.CSS_SELECTOR, "[data-wallet=apple]").get_attribute("href")
    assert href.endswith(f"/p/{serial}.pkpass")
    r = client.get(f"/p/{serial}.pkpass")
    assert r.mimetype == "application/vnd.apple.pkpass"
    verify_pkpass(r.data, settings.certs_dir / "ca.pem", tmp_path / "pkpass")


def test_android_sees_google_first(live_server, browser, runtime, monkeypatch):
    monkeypatch.setattr(
        runtime,
        "settings",
        runtime.settings.override(
            google_issuer_id="3388000000012345678", google_service_account_file="/dev/null"
        ),
    )
    driver = browser(user_agent=ANDROID_UA)
    _join(driver, live_server, "Grace Hopper", "grace@example.test")
    assert _wallet_order(driver) == ["google", "apple"]
    screenshot(driver, "landing-android")
