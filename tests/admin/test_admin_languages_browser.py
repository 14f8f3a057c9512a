"""The admin's dashboard in the reader's language, in real headless Chromium: a Taiwanese
browser and a Greek one sign in to a shop's month of figures and see the KPIs, the
money in the shop's currency written their way, and the charts' series and days in their
language (and the README's pictures are taken).

Set WALLETPASS_REFRESH_SCREENSHOTS=1 to copy the pictures to docs/screenshots.
"""

# ruff: noqa: F811 - fixtures imported by name are "redefined" as arguments
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from browser_support import browser, live_server, screenshot  # noqa: F401 - fixtures
from test_admin_browser import TIERS, full_page, seed_a_month
from test_admin_support import PASSWORD, make_shop

from walletpass.tenancy.models import Merchant

pytestmark = pytest.mark.browser
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.parametrize(
    ("accept_language", "lang", "currency", "zone", "expected"),
    [
        (
            "zh-TW,zh;q=0.9,en;q=0.5",
            "zh-Hant",
            "TWD",
            "Asia/Taipei",
            {"liability": "點數負債", "spend": "平均消費", "legend": "Apple 安裝", "money": "$"},
        ),
        (
            "el-GR,el;q=0.9",
            "el",
            "EUR",
            "Europe/Athens",
            {
                "liability": "ΥΠΟΧΡΈΩΣΗ ΠΌΝΤΩΝ",
                "spend": "ΜΈΣΗ ΔΑΠΆΝΗ",
                "legend": "Εγκαταστάσεις Apple",
                "money": "&nbsp;€",
            },
        ),
    ],
)
def test_the_dashboard_in_the_readers_language(  # type: ignore[no-untyped-def]
    live_server, browser, runtime, settings, accept_language, lang, currency, zone, expected
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    shop = make_shop(runtime, "tiers", rules=TIERS)
    seed_a_month(runtime, settings, shop)
    with runtime.transaction() as s:
        merchant = s.get(Merchant, shop.merchant_id)
        merchant.currency, merchant.timezone = currency, zone
    driver = browser(width=1440, height=1000)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": accept_language}}
    )
    wait = WebDriverWait(driver, 20)
    driver.get(live_server.url + "/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "email")))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    driver.find_element(By.ID, "email").send_keys(shop.emails["marketer"])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart-installs .plot-container")))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart-scans .plot-container")))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang

    liability = driver.find_element(By.ID, "kpi-liability")
    assert liability.text.startswith(expected["liability"]), liability.text
    assert driver.find_element(By.ID, "kpi-spend").text.startswith(expected["spend"])
    # The money as the reader writes it, in the shop's currency (innerHTML keeps the
    # no-break space Greek puts before the euro sign).
    value = liability.find_element(By.CSS_SELECTOR, ".value").get_attribute("innerHTML")
    assert expected["money"] in value, value
    if currency == "TWD":
        assert "." not in value  # whole dollars
    legend = driver.find_element(By.CSS_SELECTOR, "#chart-installs .legend").text
    assert expected["legend"] in legend, legend
    full_page(driver)
    png = screenshot(driver, f"dashboard-{lang}")
    # The README's pictures change only when asked: a test run leaves the checkout clean.
    if os.environ.get("WALLETPASS_REFRESH_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, DOCS / f"dashboard-{lang}.png")
