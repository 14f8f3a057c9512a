"""Texts a merchant types (a program's name, a reward's, an offer's title, description and
terms, a tier's name), in each language the merchant gave them in.

The field as it always was (``Program.name``) is the text in the merchant's default
language; the other languages' texts are kept beside it as ``{"el": {"name": "..."}}``
(the rows' ``translations`` column; a tier's names in the program's rules). A reader whose
language has no text of its own reads the default: a merchant translates what matters to
their customers and nothing else. Pure and Flask-free: the pass variables (written from the
worker), the pages, the API and the admin all read through :func:`localised`; the API's
schemas and the rules read a language tag through :func:`by_language`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from walletpass.i18n.languages import PSEUDO, languages, normalise

# The texts of each kind of row that have languages, and their longest length: the same as
# the default field's (the columns' and the API's).
PROGRAM_FIELDS: Mapping[str, int] = {"name": 200}
REWARD_FIELDS: Mapping[str, int] = {"name": 200}
OFFER_FIELDS: Mapping[str, int] = {"title": 200, "description": 5000, "terms": 5000}
TIER_NAME_LENGTH = 64

Translations = dict[str, dict[str, str]]


def localised(
    default: str, translations: Mapping[str, Any] | None, field: str, lang: str | None
) -> str:
    """``field``'s text in ``lang``, or ``default`` when that language has none.

    ``localised(program.name, program.translations, "name", member.language)``.
    """
    if not lang or not translations:
        return default
    by_field = translations.get(lang)
    if isinstance(by_field, Mapping):
        value = by_field.get(field)
        if isinstance(value, str) and value.strip():
            return value
    return default


def language_key(tag: str) -> str:
    """One of our languages for a tag (``zh-TW`` → ``zh-Hant``); ValueError otherwise."""
    found = normalise(tag)
    if found is None or found == PSEUDO:
        raise ValueError(f"{tag!r} is not one of {', '.join(languages())} (or a regional tag)")
    return found


def by_language(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with its keys as our languages; ValueError for an unknown language or two
    tags of one language (``zh-TW`` and ``zh-Hant``), which would silently overwrite."""
    found: dict[str, Any] = {}
    for tag, value in raw.items():
        lang = language_key(tag)
        if lang in found:
            raise ValueError(f"{tag!r} is {lang}, given twice")
        found[lang] = value
    return found


def replaced(
    existing: Mapping[str, Any] | None, changes: Mapping[str, Mapping[str, str]]
) -> Translations:
    """``existing`` with each language of ``changes`` replaced whole (an empty one removed),
    the other languages untouched: a PATCH of the Greek texts leaves the Chinese alone."""
    out: Translations = {
        lang: dict(texts) for lang, texts in (existing or {}).items() if isinstance(texts, Mapping)
    }
    for lang, texts in changes.items():
        if texts:
            out[lang] = dict(texts)
        else:
            out.pop(lang, None)
    return out


def changed_languages(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> set[str]:
    """The languages whose texts differ between two translations: their readers' cards
    change, nobody else's."""
    before, after = before or {}, after or {}
    return {lang for lang in set(before) | set(after) if before.get(lang) != after.get(lang)}
