"""The till in the staff's language, in real headless Chromium: a Taiwanese phone and a
Greek one each scan a card and record a purchase; the script's messages, amounts and
times come out in their language (and the README's pictures are taken); under the
pseudo-language no English is left in what the script wrote.

Set WALLETPASS_REFRESH_SCREENSHOTS=1 to copy the pictures to docs/screenshots.
"""

# ruff: noqa: F811, RUF001 - fixtures imported by name are "redefined" as arguments; the
# expected Chinese texts use full-width punctuation, as Chinese does
from __future__ import annotations

import os
import shutil
from pathlib import Path

import factories
import pytest
from browser_support import browser, live_server, screenshot  # noqa: F401
from pseudo_support import english_left
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from walletpass.app import create_app
from walletpass.loyalty.models import Reward
from walletpass.tenancy.models import Store
from walletpass.tenancy.users import create_user

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def app(runtime):  # type: ignore[no-untyped-def]
    # The pseudo-language on offer too (?lang=en-XA); real languages as always.
    application = create_app(
        runtime.settings.override(pseudo_locale=True), runtime=runtime, start_worker=False
    )
    application.config["TESTING"] = True
    return application


def _shop(runtime, settings, *, currency, timezone, language):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(
            s, name="Bean There", currency=currency, timezone=timezone, language=language
        )
        program = factories.program(
            s, merchant, "points", name="Bean Points", rules={"amount_per_point": "1"}
        )
        s.add(
            Reward(
                merchant_id=merchant.id, program_id=program.id, name="Free muffin", cost_points=10
            )
        )
        s.add(Store(merchant_id=merchant.id, code="main", name="Main Street"))
        member = factories.member(s, program, name="Ada Lovelace")
        code = factories.member_pass(s, settings, member).barcode
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        return code


def _purchase(browser, live_server, code, amount, accept_language, first_page="/till/"):  # type: ignore[no-untyped-def]
    """A phone whose browser asks for ``accept_language`` signs in, scans, records."""
    driver = browser(width=430, height=1100)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": accept_language}}
    )
    wait = WebDriverWait(driver, 10)
    driver.get(f"{live_server.url}{first_page}")
    wait.until(ec.url_contains("/till/login"))
    driver.find_element(By.ID, "email").send_keys("staff@example.test")
    driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    field = wait.until(ec.visibility_of_element_located((By.ID, "code")))
    field.send_keys(code + Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "who-name"), "Ada Lovelace"))
    driver.find_element(By.ID, "amount").send_keys(amount + Keys.ENTER)
    wait.until(ec.visibility_of_element_located((By.ID, "undo-bar")))
    return driver


def _keep(png: Path, name: str) -> None:
    # The README's pictures change only when asked: a test run leaves the checkout clean.
    if os.environ.get("WALLETPASS_REFRESH_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, DOCS / f"{name}.png")


def test_a_taiwanese_phone_runs_the_till_in_traditional_chinese(
    live_server, browser, runtime, settings
):  # type: ignore[no-untyped-def]
    code = _shop(runtime, settings, currency="TWD", timezone="Asia/Taipei", language="zh-Hant")
    driver = _purchase(browser, live_server, code, "120", "zh-TW,zh;q=0.9,en;q=0.5")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-Hant"
    status = driver.find_element(By.ID, "status").text
    # Whole dollars (TWD has no minor unit), the count and its noun in Chinese.
    assert status == "已記錄 $120 的消費。變動：+120 點。餘額：120 點。", status
    assert "$120 的消費" in driver.find_element(By.ID, "undo-text").text
    assert driver.find_element(By.ID, "balance-label").text == "點"
    assert "Free muffin（10 點）" in driver.find_element(By.ID, "rewards").text
    assert driver.find_element(By.CSS_SELECTOR, "label[for=amount]").text == "消費金額（TWD）"
    _keep(screenshot(driver, "till-zh-Hant"), "till-zh-Hant")


def test_a_greek_phone_runs_the_till_in_greek(live_server, browser, runtime, settings):  # type: ignore[no-untyped-def]
    code = _shop(runtime, settings, currency="EUR", timezone="Europe/Athens", language="el")
    driver = _purchase(browser, live_server, code, "12,50", "el-GR,el;q=0.9")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "el"
    status = driver.find_element(By.ID, "status").text
    # Euro amounts as Greek writes them; one purchase of 12,50 earns 12 points.
    assert status == ("Καταχωρίστηκε αγορά 12,50 €. Μεταβολή: +12 πόντοι. Υπόλοιπο: 12 πόντοι."), (
        status
    )
    assert "αγορά 12,50 €" in driver.find_element(By.ID, "undo-text").text
    assert driver.find_element(By.ID, "amount").get_attribute("placeholder") == "12,50"
    _keep(screenshot(driver, "till-el"), "till-el")


def test_the_tills_script_writes_nothing_in_plain_english(live_server, browser, runtime, settings):  # type: ignore[no-untyped-def]
    code = _shop(runtime, settings, currency="EUR", timezone="Europe/Paris", language="en")
    driver = _purchase(
        browser, live_server, code, "12.50", "en-GB", first_page="/till/login?lang=en-XA"
    )
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en-XA"
    wait = WebDriverWait(driver, 10)

    def status() -> str:
        return str(driver.find_element(By.ID, "status").text)

    shown = [
        status(),
        driver.find_element(By.ID, "undo-text").text,
        driver.find_element(By.ID, "who-sub").text,
        driver.find_element(By.ID, "balance-label").text,
        driver.find_element(By.ID, "rewards").text,
    ]
    # A reward redeemed (12 points, it costs 10), then undone.
    before = status()
    driver.find_element(By.CSS_SELECTOR, "#rewards button").click()
    wait.until(lambda d: status() != before)
    shown.append(status())
    before = status()
    driver.find_element(By.ID, "undo-btn").click()
    wait.until(lambda d: status() != before)
    shown.append(status())
    # An error the server words: a code no card has.
    code_field = driver.find_element(By.ID, "code")
    code_field.clear()
    code_field.send_keys("NOPE-0000" + Keys.ENTER)
    wait.until(lambda d: "error" in d.find_element(By.ID, "status").get_attribute("class"))
    shown.append(status())
    # CLDR's English for the pseudo-language's times (AM/PM) is not a text of ours.
    data = ["Ada Lovelace", "Free muffin", "AM", "PM"]
    for text in shown:
        assert text, shown
        assert english_left(text, data) == [], text
    screenshot(driver, "till-en-XA")
