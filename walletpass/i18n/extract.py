"""The texts to translate, found in the code and templates, and the catalogues kept in step.

``python -m walletpass.i18n.extract update`` adds every new text to each language's
catalogue of its area (untranslated, for a translator to fill in) and marks texts no
longer used as obsolete; ``python -m walletpass.i18n.extract check`` lists what is missing
or untranslated and exits 1 (tests/i18n/test_languages.py runs the same check);
``python -m walletpass.i18n.extract fill AREA FILE.json`` writes translations given as
``{"msgid": {"el": "...", "zh-Hant": "...", "zh-Hans": "..."}}`` (a plural's forms as a list).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from walletpass.i18n.languages import DEFAULT, LOCALES_DIR, babel_locale, languages
from walletpass.resources import package_path

PACKAGE_DIR = package_path()
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "lazy_gettext": None}
_METHODS = [("**.py", "python"), ("**.html", "jinja2.ext:babel_extract")]
_JINJA = {"**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}

# Each area's catalogue holds the texts of the files its patterns match (paths inside the
# package), so that each catalogue has one owner; a file belongs to the first area whose
# pattern matches it. Texts of files no area matches (the API's, the CLI's) stay English:
# they are read by machines and operators, not by shops' customers or staff.
AREAS: dict[str, tuple[str, ...]] = {
    "common": ("web/*", "i18n/*"),
    "public": ("public/*",),
    "till": ("till/*", "scan/*"),
    "programs": (
        "admin/templates/admin/base.html",
        "admin/templates/admin/program*",
        "admin/templates/admin/reward*",
        "admin/templates/admin/_preview.html",
        "admin/views/programs.py",
        "admin/views/rewards.py",
        "admin/rules_forms.py",
        "admin/static/*",
    ),
    "texts": ("admin/templates/admin/texts*", "admin/views/texts.py"),
    "admin": ("admin/*", "campaigns/*", "health/*"),
    "cards": ("cards/*", "loyalty/*", "offers/*", "passes/*", "google/*", "apple/*"),
    "mail": ("mail/*",),
}


@dataclass(frozen=True)
class Message:
    msgid: str | tuple[str, str]
    locations: tuple[tuple[str, int], ...]


def area_of(path: str) -> str | None:
    """The area a file of the package (``admin/views/programs.py``) belongs to, if any."""
    for area, patterns in AREAS.items():
        if any(fnmatch(path, pattern) for pattern in patterns):
            return area
    return None


@cache
def _extract_all() -> dict[str, dict[str | tuple[str, str], Message]]:
    found: dict[str, dict[str | tuple[str, str], list[tuple[str, int]]]] = {a: {} for a in AREAS}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        PACKAGE_DIR, method_map=_METHODS, options_map=_JINJA, keywords=KEYWORDS
    ):
        path = Path(filename).as_posix()
        area = area_of(path)
        key = message if isinstance(message, str) else (message[0], message[1])
        if area is None or not key:
            continue
        found[area].setdefault(key, []).append((path, lineno))
    return {
        area: {key: Message(key, tuple(where)) for key, where in texts.items()}
        for area, texts in found.items()
    }


def extract(area: str) -> dict[str | tuple[str, str], Message]:
    """Every translatable text of one area, keyed by its msgid (a pair for plurals)."""
    return _extract_all()[area]


def catalogue_path(lang: str, area: str) -> Path:
    return LOCALES_DIR / lang / f"{area}.po"


def read(lang: str, area: str) -> Catalog:
    path = catalogue_path(lang, area)
    if not path.is_file():
        return Catalog(locale=babel_locale(lang), project="walletpass", fuzzy=False)
    with path.open("rb") as handle:
        return read_po(handle, locale=babel_locale(lang))


def problems(lang: str, area: str) -> list[str]:
    """What a language's catalogue of an area lacks: texts missing, untranslated or fuzzy."""
    catalog = read(lang, area)
    found = []
    for key, message in extract(area).items():
        entry = catalog.get(key if isinstance(key, str) else key[0])
        where = "{}:{}".format(*message.locations[0])
        if entry is None:
            found.append(f"{lang}/{area}.po: missing {key!r} ({where})")
        elif entry.fuzzy or not _translated(entry.string):
            found.append(f"{lang}/{area}.po: untranslated {key!r} ({where})")
    return found


def _translated(string: str | tuple[str, ...] | list[str] | None) -> bool:
    if not string:
        return False
    if isinstance(string, str):
        return bool(string.strip())
    return all(part.strip() for part in string)


def update(lang: str, area: str) -> int:
    """Bring one catalogue in step with the code; returns how many texts it newly lacks."""
    catalog = read(lang, area)
    template = Catalog(locale=babel_locale(lang), project="walletpass")
    for key, message in sorted(extract(area).items(), key=lambda item: str(item[0])):
        template.add(key, locations=message.locations)
    created = catalog.creation_date
    catalog.update(template, no_fuzzy_matching=True)
    # update() stamps the template's creation date: keep the file's, so a catalogue whose
    # texts did not change is rewritten byte for byte.
    catalog.creation_date = created
    path = catalogue_path(lang, area)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, ignore_obsolete=True)
    return sum(1 for entry in catalog if entry.id and not _translated(entry.string))


def fill(area: str, texts: dict[str, dict[str, str | list[str]]]) -> int:
    """Write translations into an area's catalogues: ``{msgid: {lang: msgstr}}``.

    A plural text is keyed by its singular msgid and given as a list of forms. Texts not
    in the catalogue (run ``update`` first) are refused, so a typo in a msgid shows.
    Returns how many translations were written.
    """
    written = 0
    for lang in {lang for by_lang in texts.values() for lang in by_lang}:
        catalog = read(lang, area)
        for msgid, by_lang in texts.items():
            if lang not in by_lang:
                continue
            entry = catalog.get(msgid)
            if entry is None:
                raise KeyError(f"{lang}/{area}.po has no {msgid!r}: run update first")
            value = by_lang[lang]
            entry.string = tuple(value) if isinstance(value, list) else value
            entry.flags.discard("fuzzy")
            written += 1
        with catalogue_path(lang, area).open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, ignore_obsolete=True)
    return written


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    langs = [lang for lang in languages() if lang != DEFAULT]
    if command == "update":
        areas = argv[1:] or list(AREAS)
        for lang in langs:
            for area in areas:
                missing = update(lang, area)
                print(f"{lang}/{area}.po: {missing} untranslated")
        return 0
    if command == "fill" and len(argv) == 3:
        import json

        texts = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
        print(f"{fill(argv[1], texts)} translations written to {argv[1]}")
        return 0
    if command == "check":
        found = [p for lang in langs for area in AREAS for p in problems(lang, area)]
        print("\n".join(found) or "every catalogue is complete")
        return 1 if found else 0
    print(
        "usage: python -m walletpass.i18n.extract update [AREA...] | check | fill AREA FILE.json",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
