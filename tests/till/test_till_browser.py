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

from walletpass.loyalty.models import Reward
from walletpass.tenancy.users import create_user

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


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
    driver = browser()
    wait = WebDriverWait(driver, 10)
    driver.get(f"{live_server.url}/till/")
    wait.until(ec.url_contains("/till/login"))
    driver.find_element(By.ID, "email").send_keys("staff@example.test")
    driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    code = wait.until(ec.visibility_of_element_located((By.ID, "code")))
    # What a USB scanner does: type the code into the focused field and press Enter.
    code.send_keys(card + Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "who-name"), "Ada Lovelace"))
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=balance]").text == "0"
    driver.find_element(By.ID, "amount").send_keys("12.50")
    driver.find_element(By.ID, "purchase-btn").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-testid=balance]"), "12"))
    status = driver.find_element(By.ID, "status").text
    assert "+12 points" in status
    assert "Balance 12 points" in status
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
    driver = browser()
    wait = WebDriverWait(driver, 10)
    driver.get(f"{live_server.url}/till/")
    wait.until(ec.url_contains("/till/login"))
    driver.find_element(By.ID, "email").send_keys("staff@example.test")
    driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    code = wait.until(ec.visibility_of_element_located((By.ID, "code")))
    code.send_keys(club_card + Keys.ENTER)
    state = (By.CSS_SELECTOR, "[data-testid=membership-state]")
    wait.until(ec.text_to_be_present_in_element(state, "Membership unpaid"))
    assert "EUR 30.00" in driver.find_element(*state).text
    assert not driver.find_element(By.ID, "rewards-box").is_displayed()
    pay = driver.find_element(By.ID, "pay-btn")
    assert pay.text == "Record payment of EUR 30.00"
    pay.click()
    wait.until(ec.text_to_be_present_in_element(state, "Membership valid until"))
    assert "Payment of EUR 30.00 recorded" in driver.find_element(By.ID, "status").text
    assert not driver.find_element(By.ID, "pay-btn").is_displayed()
    assert "Free coffee" in driver.find_element(By.ID, "rewards").text
