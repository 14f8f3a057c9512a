"""The admin on a phone, in real headless Chromium: the navigation folds behind a menu
button that opens without JavaScript, every entry is reachable once open, the desktop
keeps its side navigation; the program and reward pages pass axe-core's checks."""

from __future__ import annotations

import pytest
from browser_support import browser, live_server, path_is, screenshot  # noqa: F401 - fixtures
from test_admin_support import PASSWORD, make_shop

NAV = (
    "/admin/",
    "/admin/programs",
    "/admin/rewards",
    "/admin/offers",
    "/admin/campaigns",
    "/admin/members",
    "/admin/stores",
    "/admin/api-keys",
    "/admin/wallet-logs",
    "/admin/wallet-problems",
)
TIERS = {
    "amount_per_point": "1",
    "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "300"}],
}


def sign_in(driver, url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/admin/login")
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "email")))
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 20).until(path_is(r"/admin/?"))


def phone(open_browser):  # type: ignore[no-untyped-def]
    """A 390x844 viewport: headless Chromium's window is at least 500 pixels wide, so the
    phone's size is emulated as DevTools does."""
    driver = open_browser(width=390, height=844)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    return driver


def nav_links(driver):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return {
        a.get_attribute("pathname"): a
        for a in driver.find_elements(By.CSS_SELECTOR, ".wpa-menu-items > ul a")
    }


def serious_violations(driver) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    from axe_core_python.selenium import Axe

    results = Axe().run(driver)
    return [
        (v["id"], [n["target"][0] for n in v["nodes"]][:5])
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.browser
def test_the_phone_menu_opens_without_script_and_reaches_every_page(  # type: ignore[no-untyped-def]
    live_server,  # noqa: F811 - the fixture imported above
    browser,  # noqa: F811
    runtime,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shop = make_shop(runtime, "tiers", rules=TIERS)
    driver = phone(browser)
    sign_in(driver, live_server.url, shop.emails["marketer"])
    assert driver.execute_script("return document.documentElement.clientWidth") == 390
    # JavaScript off from here on: the menu is a checkbox and its label.
    driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    driver.get(live_server.url + "/admin/programs")
    button = driver.find_element(By.CSS_SELECTOR, "label.wpa-menu-button")
    assert button.is_displayed()
    assert button.size["height"] >= 44  # a finger's target
    links = nav_links(driver)
    assert set(links) == set(NAV)
    assert not any(a.is_displayed() for a in links.values())
    # The page itself starts right under the bar, not below nine entries.
    heading = driver.find_element(By.CSS_SELECTOR, "main h1")
    assert heading.location["y"] < 200

    button.click()
    WebDriverWait(driver, 5).until(lambda d: all(a.is_displayed() for a in nav_links(d).values()))
    for a in nav_links(driver).values():
        box = a.rect
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390, a.text
    switcher = driver.find_elements(By.CSS_SELECTOR, ".wpa-menu-items .wp-languages a")
    assert [s.get_attribute("hreflang") for s in switcher] == ["en", "el", "zh-Hans", "zh-Hant"]
    assert all(s.is_displayed() for s in switcher)
    screenshot(driver, "admin-phone-menu")

    # Every entry leads to its page, the menu opened each time from the folded bar.
    for path in NAV:
        driver.get(live_server.url + "/admin/programs")
        driver.find_element(By.CSS_SELECTOR, "label.wpa-menu-button").click()
        link = nav_links(driver)[path]
        WebDriverWait(driver, 5).until(lambda _d, link=link: link.is_displayed())
        link.click()
        WebDriverWait(driver, 10).until(path_is(path.rstrip("/") + "/?"))
        assert "Internal Server Error" not in driver.page_source

    # The switcher, opened from the menu, turns the admin Greek.
    driver.get(live_server.url + "/admin/programs")
    driver.find_element(By.CSS_SELECTOR, "label.wpa-menu-button").click()
    greek = driver.find_element(By.CSS_SELECTOR, ".wpa-menu-items .wp-languages a[hreflang=el]")
    WebDriverWait(driver, 5).until(lambda _d: greek.is_displayed())
    greek.click()
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "el"
    )
    assert driver.find_element(By.CSS_SELECTOR, "main h1").text == "Προγράμματα"


@pytest.mark.browser
def test_the_desktop_keeps_its_side_navigation(  # type: ignore[no-untyped-def]
    live_server,  # noqa: F811
    browser,  # noqa: F811
    runtime,
):
    from selenium.webdriver.common.by import By

    shop = make_shop(runtime, "points")
    driver = browser(width=1440, height=900)
    sign_in(driver, live_server.url, shop.emails["marketer"])
    driver.get(live_server.url + "/admin/rewards")
    assert not driver.find_element(By.CSS_SELECTOR, "label.wpa-menu-button").is_displayed()
    links = nav_links(driver)
    assert all(a.is_displayed() for a in links.values())
    assert links["/admin/rewards"].get_attribute("aria-current") == "page"
    nav = driver.find_element(By.CSS_SELECTOR, "nav.wpa-nav")
    main = driver.find_element(By.CSS_SELECTOR, "main.wpa-main")
    assert nav.rect["x"] + nav.rect["width"] <= main.rect["x"]  # beside, not above


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1440])
def test_the_program_and_reward_pages_pass_axe(  # type: ignore[no-untyped-def]
    live_server,  # noqa: F811
    browser,  # noqa: F811
    runtime,
    width,
):
    from selenium.webdriver.common.by import By

    shop = make_shop(runtime, "tiers", rules=TIERS)
    driver = phone(browser) if width == 390 else browser(width=width, height=900)
    sign_in(driver, live_server.url, shop.emails["marketer"])
    for path in (
        "/admin/programs",
        f"/admin/programs/{shop.program_id}",
        "/admin/programs/new?kind=stamps",
        "/admin/programs/new?kind=membership",
        "/admin/rewards",
        "/admin/rewards/new",
    ):
        driver.get(live_server.url + path)
        assert serious_violations(driver) == [], path
        # Nothing wider than the phone: no sideways scrolling to reach a field.
        wide = driver.execute_script("return document.documentElement.scrollWidth")
        assert wide <= width, (path, wide)
    if width == 390:
        # The tiers' fields in Greek, for a look at the longest labels on a phone.
        driver.get(f"{live_server.url}/admin/programs/{shop.program_id}?lang=el")
        rules = driver.find_element(By.CSS_SELECTOR, ".wpa-rules-title")
        driver.execute_script("arguments[0].scrollIntoView()", rules)
        screenshot(driver, "admin-phone-program-rules-el")
    else:
        driver.get(f"{live_server.url}/admin/programs/{shop.program_id}?lang=zh-Hant")
        driver.set_window_size(1440, 2200)
        screenshot(driver, "admin-program-rules-zh-Hant")
