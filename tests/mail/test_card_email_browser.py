"""Real headless Chromium on a phone: staff scans a card and taps "send the card again";
the SMTP server started by the test receives the email."""

# ruff: noqa: F811 - pytest fixtures imported by name are "redefined" as arguments
from __future__ import annotations

import pytest
from browser_support import browser, live_server  # noqa: F401
from mail_support import MAIL_FROM, greek_member, smtp_server  # noqa: F401
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from walletpass.tenancy.users import create_user

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture
def settings(settings, smtp_server):  # type: ignore[no-untyped-def]
    return settings.override(smtp_url=smtp_server.url, mail_from=MAIL_FROM)


def test_the_till_sends_the_card_again_with_one_tap(
    live_server, browser, runtime, settings, worker, smtp_server
):
    shop = greek_member(runtime, settings)
    with runtime.transaction() as s:
        create_user(
            s,
            merchant_id=shop["merchant_id"],
            email="staff@example.test",
            password=PASSWORD,
            role="staff",
        )
    driver = browser()
    wait = WebDriverWait(driver, 10)
    driver.get(f"{live_server.url}/till/")
    wait.until(ec.url_contains("/till/login"))
    driver.find_element(By.ID, "email").send_keys("staff@example.test")
    driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
    field = wait.until(ec.visibility_of_element_located((By.ID, "code")))
    field.send_keys(shop["code"] + Keys.ENTER)
    button = wait.until(ec.visibility_of_element_located((By.ID, "card-email-btn")))
    button.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "on its way"))
    worker.run_until_idle()
    [got] = smtp_server.received
    assert got.rcpt_tos == ["eleni@example.test"]
    assert f"/p/{shop['serial']}" in got.text
