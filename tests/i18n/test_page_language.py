"""Which language a page is written in: the switcher, then the browser, then the merchant."""

from __future__ import annotations

import re

from walletpass.app import create_app


def _lang(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:300]
    return found.group(1)


def test_a_taiwanese_browser_reads_traditional_chinese(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/admin/login", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.8"})
    assert _lang(page) == "zh-Hant"
    assert 'aria-label="語言"' in page.get_data(as_text=True)
    page = client.get("/admin/login", headers={"Accept-Language": "zh-CN"})
    assert _lang(page) == "zh-Hans"
    page = client.get("/admin/login", headers={"Accept-Language": "fr-FR, de"})
    assert _lang(page) == "en"


def test_the_switcher_choice_wins_over_the_browser_and_is_remembered(client) -> None:  # type: ignore[no-untyped-def]
    greek = {"Accept-Language": "el-GR"}
    page = client.get("/admin/login", headers=greek)
    body = page.get_data(as_text=True)
    assert _lang(page) == "el"
    assert 'aria-label="Γλώσσα"' in body
    # Each language links to this same page in it, named as its readers name it.
    for lang, name in (("en", "English"), ("zh-Hant", "繁體中文"), ("zh-Hans", "简体中文")):
        assert f'href="/admin/login?lang={lang}" hreflang="{lang}" lang="{lang}">{name}</a>' in body
    assert 'hreflang="el" lang="el" aria-current="true">Ελληνικά</a>' in body

    picked = client.get("/admin/login?lang=zh-Hant", headers=greek)
    assert _lang(picked) == "zh-Hant"
    cookie = picked.headers["Set-Cookie"]
    assert cookie.startswith("wp_lang=zh-Hant;")
    assert "HttpOnly" in cookie
    assert _lang(client.get("/admin/login", headers=greek)) == "zh-Hant"
    # A language we do not speak is ignored, not stored.
    ignored = client.get("/admin/login?lang=fr", headers=greek)
    assert _lang(ignored) == "zh-Hant"
    assert "Set-Cookie" not in ignored.headers


def test_the_pseudo_language_is_offered_only_when_configured(client, runtime) -> None:  # type: ignore[no-untyped-def]
    assert _lang(client.get("/admin/login?lang=en-XA")) == "en"
    pseudo_app = create_app(
        runtime.settings.override(pseudo_locale=True), runtime=runtime, start_worker=False
    )
    page = pseudo_app.test_client().get("/admin/login?lang=en-XA")
    assert _lang(page) == "en-XA"
    assert 'aria-label="\u27e6Ŀȧƞɠŭȧɠḗ\u27e7"' in page.get_data(as_text=True)
