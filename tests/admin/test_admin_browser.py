"""The admin in real headless Chromium: sign in, charts render, the live preview updates."""

from __future__ import annotations

import os
import random
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import factories
import pytest
from browser_support import browser, live_server, screenshot  # noqa: F401 - fixtures
from test_admin_support import PASSWORD, make_shop

from walletpass.campaigns.models import Campaign, CampaignRecipient
from walletpass.db import utcnow
from walletpass.loyalty.models import Program
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import PassEvent
from walletpass.scan.models import Scan
from walletpass.tenancy.models import Merchant

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIERS = {
    "amount_per_point": "1",
    "points_to_currency": "0.05",
    "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "300"}],
}


def seed_a_month(runtime, settings, shop) -> None:  # type: ignore[no-untyped-def]
    """A café's month: installs growing after a flyer, some removals, daily scans."""
    rng = random.Random(7)
    now = utcnow()
    with runtime.transaction(shop.merchant_id) as s:
        merchant = s.get(Merchant, shop.merchant_id)
        merchant.name = "Bean There Coffee"
        program = s.get(Program, shop.program_id)
        program.name = "Coffee Club"
        program.design = {
            "background": "#3b2418",
            "foreground": "#fff7eb",
            "label": "#e9c8a0",
            "logo_text": "Bean There",
        }
        members = []
        for i in range(40):
            m = factories.member(s, program, name=f"Guest {i}", points_balance=rng.randint(0, 400))
            members.append((m, factories.member_pass(s, settings, m)))
        for day in range(30):
            moment = now - timedelta(days=29 - day, hours=rng.randint(0, 6))
            boost = 3 if 12 <= day <= 16 else 1  # the flyer week
            for platform, weight in (("apple", 3), ("google", 2)):
                for _ in range(rng.randint(0, weight * boost)):
                    s.add(
                        PassEvent(
                            merchant_id=merchant.id,
                            pass_id=members[0][1].id,
                            platform=platform,
                            kind="installed",
                            created_at=moment,
                        )
                    )
                if rng.random() < 0.3:
                    s.add(
                        PassEvent(
                            merchant_id=merchant.id,
                            pass_id=members[0][1].id,
                            platform=platform,
                            kind="removed",
                            created_at=moment,
                        )
                    )
            for _ in range(rng.randint(4, 14) + (3 if moment.weekday() >= 5 else 0)):
                member, _ = rng.choice(members)
                s.add(
                    Scan(
                        merchant_id=merchant.id,
                        member_id=member.id,
                        action="purchase",
                        code="x",
                        amount=Decimal(rng.randint(350, 2400)) / 100,
                        result="ok",
                        created_at=moment,
                    )
                )
        # Campaigns about an offer, sent two days ago; the chart counts the recipients
        # who redeemed a coupon of the offer at the till since.
        sent = now - timedelta(days=2)
        for n, (name, redeemed) in enumerate(
            (("Spring pastries", 9), ("Double points weekend", 14), ("Welcome back", 4))
        ):
            offer = Offer(merchant_id=merchant.id, slug=f"offer-{n}", title=name)
            s.add(offer)
            s.flush()
            campaign = Campaign(
                merchant_id=merchant.id, name=name, status="finished", offer_id=offer.id
            )
            s.add(campaign)
            s.flush()
            for i, (member, _) in enumerate(members[:30]):
                s.add(
                    CampaignRecipient(
                        merchant_id=merchant.id,
                        campaign_id=campaign.id,
                        member_id=member.id,
                        sent_at=sent,
                    )
                )
                if i < redeemed:
                    coupon = Coupon(merchant_id=merchant.id, offer_id=offer.id, member_id=member.id)
                    s.add(coupon)
                    s.flush()
                    s.add(
                        Scan(
                            merchant_id=merchant.id,
                            member_id=member.id,
                            coupon_id=coupon.id,
                            action="redeem_coupon",
                            code="x",
                            result="ok",
                            created_at=sent + timedelta(hours=20),
                        )
                    )


def full_page(driver) -> None:  # type: ignore[no-untyped-def]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, min(int(height) + 140, 2400))


@pytest.mark.browser
def test_marketer_signs_in_sees_charts_and_the_live_preview(  # type: ignore[no-untyped-def]
    live_server,  # noqa: F811 - the fixture imported above
    browser,  # noqa: F811
    runtime,
    settings,
):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    shop = make_shop(runtime, "tiers", rules=TIERS)
    seed_a_month(runtime, settings, shop)
    driver = browser(width=1440, height=1000)
    # The preview is replaced as the form changes: an element read mid-swap is stale.
    wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))

    driver.get(live_server.url + "/admin/")
    wait.until(ec.presence_of_element_located((By.ID, "email")))
    assert "/admin/login" in driver.current_url
    driver.find_element(By.ID, "email").send_keys(shop.emails["marketer"])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    # plotly.js (served from the package) drew the charts.
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart-installs .plot-container")))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart-scans .plot-container")))
    assert driver.find_elements(By.CSS_SELECTOR, "#chart-campaigns .plot-container")
    assert driver.find_element(By.ID, "kpi-liability").text.startswith("POINTS LIABILITY")
    full_page(driver)
    dashboard_png = screenshot(driver, "admin-dashboard")

    # The program page shows the preview, and it follows the form without saving.
    driver.get(f"{live_server.url}/admin/programs/{shop.program_id}")
    apple = wait.until(ec.presence_of_element_located((By.ID, "preview-apple")))
    assert "Bean There" in apple.text
    name = driver.find_element(By.ID, "name")
    name.clear()
    name.send_keys("Bean Club")
    wait.until(lambda d: "Bean Club" in d.find_element(By.ID, "preview-google").text)
    driver.execute_script(
        "var el = document.getElementById('background'); el.value = '#1c2541';"
        "el.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    wait.until(
        lambda d: "28, 37, 65" in d.find_element(By.ID, "preview-apple").get_attribute("style")
    )
    driver.execute_script(
        "var el = document.getElementById('background'); el.value = '#3b2418';"
        "el.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    wait.until(
        lambda d: "59, 36, 24" in d.find_element(By.ID, "preview-apple").get_attribute("style")
    )
    driver.set_window_size(1440, 1240)
    preview_png = screenshot(driver, "admin-pass-preview")

    # The README's pictures change only when asked: a test run leaves the checkout clean.
    if os.environ.get("WALLETPASS_REFRESH_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dashboard_png, DOCS / "dashboard.png")
        shutil.copyfile(preview_png, DOCS / "pass-preview.png")
