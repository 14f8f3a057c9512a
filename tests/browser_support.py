"""Real headless Chromium against the app served on 127.0.0.1 (for page tests).

Import the fixtures in a test module with ``from browser_support import live_server, browser``.
Tests using them are marked ``browser`` and skip with a clear reason when Debian's
chromium / chromium-driver are not installed (.ci/run installs them).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


class LiveServer:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # Polled every 50 ms for shutdown: the default half second is added to each test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """The test app over real HTTP. Its settings' public_url is not this address; pages
    that print absolute links use the configured public URL, as in production."""
    server = LiveServer(app).start()
    yield server
    server.stop()


def path_is(pattern: str):  # type: ignore[no-untyped-def]
    """A wait condition on the page's path alone. ``ec.url_contains`` also matches the
    query, so ``/admin/login?next=/admin/campaigns/`` or a form's own ``/offers/new``
    satisfied it before the navigation it was meant to wait for had happened."""
    compiled = re.compile(pattern)
    return lambda driver: compiled.fullmatch(urlsplit(driver.current_url).path) is not None


def make_driver(*, width: int = 390, height: int = 844, user_agent: str | None = None):  # type: ignore[no-untyped-def]
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install chromium "
            "chromium-driver; .ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    if user_agent:
        options.add_argument(f"--user-agent={user_agent}")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    """A phone-sized headless Chromium; call ``browser(user_agent=..., width=...)`` for others."""
    drivers = []

    def open_browser(**kw):  # type: ignore[no-untyped-def]
        driver = make_driver(**kw)
        drivers.append(driver)
        return driver

    open_browser.drivers = drivers  # type: ignore[attr-defined] - read by conftest on failure
    yield open_browser
    for driver in drivers:
        driver.quit()


def describe_pages(drivers) -> str:  # type: ignore[no-untyped-def]
    """Where each browser was and what it showed: a failed page test reports this, since
    "no such element" alone does not say whether the page was a sign-in, an error or
    still the previous one."""
    lines = []
    for n, driver in enumerate(drivers):
        try:
            body = driver.execute_script("return document.body ? document.body.innerText : ''")
            lines += [f"browser {n}: {driver.current_url} ({driver.title!r})", body[:2000], ""]
        except Exception as exc:  # the browser may be what failed
            lines.append(f"browser {n}: unreadable ({exc.__class__.__name__})")
    return "\n".join(lines)


def screenshot(driver, name: str) -> Path:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
