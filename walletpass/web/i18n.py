"""The pages' language: Flask-Babel over our catalogues, and which language a visitor reads.

The choice, first match wins: a ``?lang=`` the visitor picked in the switcher (kept in a
cookie for a year), the cookie, the browser's Accept-Language (``zh-TW`` reads
Traditional, ``zh-CN`` Simplified), the language of the merchant whose page this is (a
view sets ``g.merchant_language``), English.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from babel.support import NullTranslations
from flask import Flask, Response, current_app, g, request
from flask_babel import Babel, Domain

from walletpass.i18n import formats
from walletpass.i18n.catalogues import translations
from walletpass.i18n.languages import (
    DEFAULT,
    PSEUDO,
    babel_locale,
    best_match,
    languages,
    native_name,
    normalise,
)

COOKIE = "wp_lang"
_YEAR = 365 * 24 * 3600


class _Catalogues(Domain):
    """Flask-Babel's domain, reading our merged per-area catalogues (and the pseudo one)."""

    def get_translations(self) -> NullTranslations:
        return translations(current_language())


def init_app(app: Flask, *, pseudo: bool = False) -> None:
    app.config["WALLETPASS_PSEUDO_LOCALE"] = pseudo
    babel = Babel(app, locale_selector=lambda: str(babel_locale(current_language())))
    babel.domain_instance = _Catalogues()
    # {% trans %} blocks are extracted trimmed (walletpass/i18n/extract.py): render them so.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.after_request(_remember_choice)
    app.context_processor(_template_context)


def current_language() -> str:
    """The language this request's page is written in (a tag of ``languages()``)."""
    chosen = g.get("wp_language")
    if chosen is None:
        chosen = _choose()
        g.wp_language = chosen
    return str(chosen)


def _allowed(tag: str | None) -> str | None:
    found = normalise(tag)
    if found == PSEUDO:
        return found if current_app.config.get("WALLETPASS_PSEUDO_LOCALE") else None
    return found


def _choose() -> str:
    picked = _allowed(request.args.get("lang"))
    if picked is not None:
        g.wp_language_picked = picked
        return picked
    kept = _allowed(request.cookies.get(COOKIE))
    if kept is not None:
        return kept
    browser = best_match(list(request.accept_languages))
    if browser is not None:
        return browser
    merchant = normalise(g.get("merchant_language"))
    return merchant if merchant and merchant != PSEUDO else DEFAULT


def _remember_choice(response: Response) -> Response:
    picked = g.get("wp_language_picked")
    if picked is not None:
        response.set_cookie(
            COOKIE, picked, max_age=_YEAR, samesite="Lax", secure=request.is_secure, httponly=True
        )
    return response


def switcher_links() -> list[dict[str, Any]]:
    """The switcher's entries: this page in each language, the current one marked."""
    current = current_language()
    args = {k: v for k, v in request.args.items() if k != "lang"}
    links = []
    for lang in languages():
        query = urlencode({**args, "lang": lang})
        links.append(
            {
                "lang": lang,
                "name": native_name(lang),
                "href": f"{request.path}?{query}",
                "current": lang == current,
            }
        )
    return links


def _template_context() -> dict[str, Any]:
    lang = current_language()
    return {
        "lang": lang,
        "language_links": switcher_links,
        "money": lambda amount, currency: formats.money(amount, currency, lang),
        "number": lambda value: formats.number(value, lang),
        "day": lambda value: formats.day(value, lang),
    }
