"""The languages the service speaks, and how a browser's or a CRM's tag maps onto them.

A language is a folder of catalogues under ``walletpass/i18n/locales/`` (English, the
language of the source texts, needs none): adding one is adding a folder.
"""

from __future__ import annotations

from functools import cache

from babel import Locale

from walletpass.resources import package_path

LOCALES_DIR = package_path("i18n", "locales")
DEFAULT = "en"
# A pseudo-language for the test that finds untranslated texts (WALLETPASS_PSEUDO_LOCALE):
# every translated text comes out marked, so whatever is left plain was never translated.
PSEUDO = "en-XA"

# Chinese regions to the script their readers read: Taiwan, Hong Kong and Macau read
# Traditional Chinese; mainland China, Singapore and a bare ``zh`` Simplified.
_TRADITIONAL_REGIONS = {"tw", "hk", "mo"}


@cache
def languages() -> tuple[str, ...]:
    """English first, then every language with catalogues, as BCP 47 tags (``zh-Hant``)."""
    found = sorted(p.name for p in LOCALES_DIR.iterdir() if p.is_dir() and any(p.glob("*.po")))
    return (DEFAULT, *[tag for tag in found if tag != DEFAULT])


def normalise(tag: str | None) -> str | None:
    """The language of ours a tag names (``zh-TW`` → ``zh-Hant``, ``el-GR`` → ``el``), or None.

    Case and ``_`` versus ``-`` do not matter; a script subtag wins over a region
    (``zh-Hant-CN`` is Traditional).
    """
    if not tag:
        return None
    cleaned = tag.strip().replace("_", "-").lower()
    if cleaned == PSEUDO.lower():
        return PSEUDO
    ours = {lang.lower(): lang for lang in languages()}
    parts = cleaned.split("-")
    if parts[0] == "zh":
        if "hant" in parts or _TRADITIONAL_REGIONS.intersection(parts[1:]):
            found = "zh-Hant"
        else:
            found = "zh-Hans"
        return found if found.lower() in ours else None
    return ours.get(parts[0])


def best_match(accepted: list[tuple[str, float]]) -> str | None:
    """The first language of ours in an Accept-Language list (tag, quality), or None."""
    for tag, quality in sorted(accepted, key=lambda item: -item[1]):
        if quality <= 0:
            continue
        found = normalise(tag)
        if found is not None and found != PSEUDO:
            return found
    return None


def babel_locale(lang: str) -> Locale:
    """Babel's locale for one of our languages (numbers, dates, money, plural rules)."""
    if lang == PSEUDO:
        return Locale.parse("en")
    return Locale.parse(lang, sep="-")


def native_name(lang: str) -> str:
    """What a language calls itself (the language switcher's labels): ``Ελληνικά``."""
    if lang == "zh-Hant":
        return "繁體中文"
    if lang == "zh-Hans":
        return "简体中文"
    name = babel_locale(lang).get_display_name(babel_locale(lang)) or lang
    return name[:1].upper() + name[1:]
