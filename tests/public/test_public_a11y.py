"""The join and card pages in real headless Chromium: without JavaScript, under axe-core,
and in a Taiwanese and a Greek phone's language (the README's screenshots)."""

# ruff: noqa: F811 - pytest fixtures imported by name are "redefined" as arguments
from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import factories
import pytest
from browser_support import ANDROID_UA, IPHONE_UA, browser, live_server, screenshot  # noqa: F401
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from walletpass.loyalty.enrolment import member_passes
from walletpass.loyalty.models import Member

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# The phones of the brief: an iPhone's 390 CSS pixels, a Pixel's 412.
PHONES = {"iphone": (IPHONE_UA, 390, 844), "android": (ANDROID_UA, 412, 915)}
# What axe must not find: the failures that stop a reader (missing labels or names, text
# too faint to read, no page language); "moderate" and "minor" findings are advice.
BLOCKING = {"serious", "critical"}


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There", currency="TWD")
        program = factories.program(
            s,
            merchant,
            "stamps",
            slug="beans",
            name="Coffee Card",
            design={"background": "#5b3a29", "foreground": "#ffffff", "label": "#f3d9b1"},
        )
        member = factories.member(s, program, name="Ada")
        member.stamps_balance = 4
        return factories.member_pass(s, settings, member).serial


def _phone(browser, kind: str, accept_language: str | None = None):  # type: ignore[no-untyped-def]
    user_agent, width, height = PHONES[kind]
    driver = browser(user_agent=user_agent, width=width, height=height)
    if accept_language:
        # The phone's language as its browser sends it (Accept-Language), not a ?lang=.
        driver.execute_cdp_cmd(
            "Emulation.setUserAgentOverride",
            {"userAgent": user_agent, "acceptLanguage": accept_language},
        )
    return driver


def _axe_violations(driver) -> list[str]:  # type: ignore[no-untyped-def]
    source = resources.files("axe_core_python").joinpath("axe.min.js").read_text("utf-8")
    driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(done, (e) => done({error: String(e)}));"
    )
    assert "error" not in result, result
    assert len(result["passes"]) > 10  # axe ran its rules on this page
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("phone", ["iphone", "android"])
def test_join_and_card_pages_pass_axe_in_english_chinese_and_greek(
    live_server, browser, shop, phone
):
    driver = _phone(browser, phone)
    for lang in ("en", "zh-Hant", "el"):
        for path in (f"/join/beans?lang={lang}", f"/p/{shop}?lang={lang}"):
            driver.get(f"{live_server.url}{path}")
            assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
            assert _axe_violations(driver) == [], path
        # The form sent empty: its errors, tied to their fields, pass too.
        driver.get(f"{live_server.url}/join/beans?lang={lang}")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(driver, 10).until(ec.visibility_of_element_located((By.ID, "name-error")))
        assert _axe_violations(driver) == [], f"join errors in {lang}"


def test_join_and_card_pages_work_without_javascript(live_server, browser, runtime, shop):
    driver = _phone(browser, "android")
    driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    driver.get(f"{live_server.url}/join/beans?src=poster")
    # The form alone: a bad submit shows its errors, a good one opens the card page.
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 10).until(ec.visibility_of_element_located((By.ID, "name-error")))
    driver.find_element(By.ID, "name").send_keys("Lin")
    driver.find_element(By.ID, "phone").send_keys("+886 912 000 111")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 10).until(ec.url_contains("/p/"))
    barcode = driver.find_element(By.CSS_SELECTOR, "[data-testid=member-barcode]")
    assert barcode.is_displayed()
    screenshot(driver, "card-android-without-google-no-script")
    image = barcode.find_element(By.CSS_SELECTOR, "svg")
    # Big enough for the till's scanner to read off the screen.
    assert image.size["width"] >= 250
    number = driver.find_element(By.CSS_SELECTOR, "[data-testid=member-number]").text
    download = driver.find_element(By.CSS_SELECTOR, "[data-testid=pkpass-download]")
    assert download.get_attribute("href").endswith(".pkpass")
    with runtime.transaction() as s:
        member = s.scalars(select(Member).where(Member.name == "Lin")).one()
        assert member.source == "poster"
        passes = member_passes(s, member.id)
    assert number == passes[0].barcode
    assert image.find_element(By.TAG_NAME, "title").get_attribute("textContent") == number


@pytest.mark.parametrize(
    ("accept_language", "lang", "welcome"),
    [("zh-TW,zh;q=0.9", "zh-Hant", "領取我的卡片"), ("el-GR,el;q=0.9", "el", "Θέλω την κάρτα μου")],
)
def test_a_phone_in_its_own_language_joins_and_sees_its_card(
    live_server, browser, runtime, shop, accept_language, lang, welcome
):
    driver = _phone(browser, "iphone", accept_language)
    driver.get(f"{live_server.url}/join/beans")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    assert driver.find_element(By.CSS_SELECTOR, "button[type=submit]").text == welcome
    join_png = screenshot(driver, f"join-{lang}")
    name = "Mei" if lang == "zh-Hant" else "Eleni"
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "email").send_keys(f"{name.lower()}@example.test")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 10).until(ec.url_contains("/p/"))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    card_png = screenshot(driver, f"card-{lang}")
    with runtime.transaction() as s:
        stored = s.scalars(select(Member.language).where(Member.name == name)).one()
        assert stored == lang
    # The README's pictures change only when asked: a test run leaves the checkout clean.
    if os.environ.get("WALLETPASS_REFRESH_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(join_png, DOCS / f"join-{lang}.png")
        shutil.copyfile(card_png, DOCS / f"card-{lang}.png")
