"""Real headless Chromium on a phone: staff signs in, types a code, records a purchase."""

# ruff: noqa: F811 - pytest fixtures imported by name are "redefined" as arguments
from __future__ import annotations

import factories
import pytest
from browser_support import browser, live_server, screenshot  # noqa: F401
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from till_support import points_card  # noqa: F401

from walletpass.loyalty.models import Reward
from walletpass.tenancy.users import create_user

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


def _scan_at_the_till(browser, live_server, code):  # type: ignore[no-untyped-def]
    """Staff signs in on a new phone and scans ``code``; the driver and its wait."""
    driver = browser()
    wait = WebDriverWait(driver, 10)
    driver.get(f"{live_server.url}/till/")
    wait.until(ec.url_contains("/till/login"))
    driver.find_element(By.ID, "email").send_keys("staff@example.test")
    driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    field = wait.until(ec.visibility_of_element_located((By.ID, "code")))
    # What a USB scanner does: type the code into the focused field and press Enter.
    field.send_keys(code + Keys.ENTER)
    return driver, wait


@pytest.fixture
def card(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There")
        program = factories.program(
            s, merchant, "points", slug="beans", name="Bean Points", rules={"amount_per_point": "1"}
        )
        s.add(
            Reward(
                merchant_id=merchant.id, program_id=program.id, name="Free muffin", cost_points=10
            )
        )
        member = factories.member(s, program, name="Ada Lovelace")
        code = factories.member_pass(s, settings, member).barcode
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        return code


def test_staff_records_a_purchase_and_sees_the_new_balance(live_server, browser, card):
    driver, wait = _scan_at_the_till(browser, live_server, card)
    wait.until(ec.text_to_be_present_in_element((By.ID, "who-name"), "Ada Lovelace"))
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=balance]").text == "0"
    driver.find_element(By.ID, "amount").send_keys("12.50")
    driver.find_element(By.ID, "purchase-btn").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid=balance]"), "12"))
    status = driver.find_element(By.ID, "status").text
    assert "+12 points" in status
    assert "Balance: 12 points." in status
    assert driver.find_element(By.ID, "undo-bar").is_displayed()
    assert "Free muffin" in driver.find_element(By.ID, "rewards").text
    screenshot(driver, "till")
    driver.find_element(By.ID, "undo-btn").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid=balance]"), "0"))
    assert "Undone" in driver.find_element(By.ID, "status").text


@pytest.fixture
def club_card(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There", currency="EUR")
        program = factories.program(
            s,
            merchant,
            "membership",
            slug="club",
            rules={"paid": True, "price": "30.00", "benefits": "10% off every visit"},
        )
        s.add(
            Reward(
                merchant_id=merchant.id, program_id=program.id, name="Free coffee", cost_points=0
            )
        )
        member = factories.member(s, program, name="Ada Lovelace")
        code = factories.member_pass(s, settings, member).barcode
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        return code


def test_staff_sees_an_unpaid_membership_and_records_its_payment(live_server, browser, club_card):
    driver, wait = _scan_at_the_till(browser, live_server, club_card)
    state = (By.CSS_SELECTOR, "[data-testid=membership-state]")
    wait.until(ec.text_to_be_present_in_element(state, "Membership unpaid"))
    assert "€30.00" in driver.find_element(*state).text
    assert not driver.find_element(By.ID, "rewards-box").is_displayed()
    pay = driver.find_element(By.ID, "pay-btn")
    assert pay.text == "Record payment of €30.00"
    pay.click()
    wait.until(ec.text_to_be_present_in_element(state, "Membership valid until"))
    assert "Payment of €30.00 recorded" in driver.find_element(By.ID, "status").text
    assert not driver.find_element(By.ID, "pay-btn").is_displayed()
    assert "Free coffee" in driver.find_element(By.ID, "rewards").text


def test_staff_pays_with_points_and_refunds_part_of_a_purchase(live_server, browser, points_card):
    driver, wait = _scan_at_the_till(browser, live_server, points_card)
    balance = (By.CSS_SELECTOR, "[data-testid=balance]")
    wait.until(ec.text_to_be_present_in_element((By.ID, "who-name"), "Ada Lovelace"))
    driver.find_element(By.ID, "amount").send_keys("50.00" + Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element(balance, "50"))

    # 20 points pay EUR 2.00 of a 10.00 purchase; the 8.00 paid earns 8: 50 - 20 + 8.
    driver.find_element(By.ID, "amount").send_keys("10.00")
    driver.find_element(By.ID, "redeem-points").send_keys("20")
    driver.find_element(By.ID, "purchase-btn").click()
    wait.until(ec.text_to_be_present_in_element(balance, "38"))
    status = driver.find_element(By.ID, "status").text
    assert "Points paid €2.00 of it." in status
    assert "-12 points" in status
    assert driver.find_element(By.ID, "redeem-points").get_attribute("value") == ""
    # The undo bar's clock is the shop's (Paris), as the answer gave it.
    assert "(undo until " in driver.find_element(By.ID, "undo-text").text

    # Half of the 50.00 purchase comes back: picked from the card's recent purchases.
    driver.find_element(By.CSS_SELECTOR, "#refund-box summary").click()
    purchases = wait.until(ec.visibility_of_element_located((By.ID, "purchases")))
    rows = purchases.find_elements(By.TAG_NAME, "li")
    assert len(rows) == 2
    assert "€50.00" in rows[1].text
    rows[1].find_element(By.TAG_NAME, "button").click()
    amount = driver.find_element(By.ID, "refund-amount")
    assert amount.get_attribute("value") == "50.00"
    receipt = driver.find_element(By.ID, "refund-receipt").get_attribute("value")
    assert receipt.startswith("till-")
    amount.clear()
    amount.send_keys("25.00")
    driver.find_element(By.ID, "refund-btn").click()
    wait.until(ec.text_to_be_present_in_element(balance, "13"))
    status = driver.find_element(By.ID, "status").text
    assert f"Refund of €25.00 on receipt {receipt} recorded. Change: -25 points" in status
    assert "refund of €25.00" in driver.find_element(By.ID, "undo-text").text
    screenshot(driver, "till-refund")
