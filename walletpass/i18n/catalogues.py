"""The gettext catalogues, loaded once per process and language, and the text API.

Catalogues live as ``locales/<language>/<area>.po``, one per area of the service (public
pages, till, admin, cards, mail...), so that each area's texts have one owner; a language's
catalogues are merged into one. The wheel carries each ``.po`` compiled to ``.mo`` beside
it (setup.py's build step); a checkout (``pip install -e``) has only the ``.po`` files,
compiled here in memory on first use.
"""

from __future__ import annotations

import gettext as stdlib_gettext
import io
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from walletpass.i18n.languages import DEFAULT, LOCALES_DIR, PSEUDO, babel_locale


def translations(lang: str) -> NullTranslations:
    """Every catalogue of one language, merged; English (and anything unknown) untranslated."""
    if lang == PSEUDO:
        return _pseudo()
    return _load(lang)


@cache
def _load(lang: str) -> NullTranslations:
    folder = LOCALES_DIR / lang
    if lang == DEFAULT or not folder.is_dir():
        return NullTranslations()
    merged = Translations(domain="messages")
    for po in sorted(folder.glob("*.po")):
        merged.merge(_compiled(po, lang))
    # merge() copies the messages only: the plural rule comes from the language itself.
    merged.plural = _plural_rule(lang)  # type: ignore[assignment]
    return merged


def _compiled(po: Path, lang: str) -> Translations:
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as handle:
            return Translations(handle)
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=babel_locale(lang))
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def _plural_rule(lang: str) -> Callable[[int], int]:
    return stdlib_gettext.c2py(get_plural(babel_locale(lang)).plural_expr)


# ------------------------------------------------------------------ the pseudo-language

# Latin letters to look-alikes, so a pseudo-translated page stays readable to a developer
# while no English word survives in it; placeholders and markup are kept as they are.
_ACCENTED = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "ȧƀƈḓḗƒɠħīĵķŀḿƞǿƥɋřşŧŭṽẇẋẏẑȦƁƇḒḖƑƓĦĪĴĶĿḾȠǾƤɊŘŞŦŬṼẆẊẎẐ",
)
# %(name)s, %s, {name} and <tags> and &entities; pass through untouched.
_KEEP = re.compile(r"%\([a-z_]+\)[sdif]|%[sdif]|\{[a-z_]*\}|<[^>]*>|&[a-z#0-9]+;")
PSEUDO_OPEN, PSEUDO_CLOSE = "\u27e6", "\u27e7"


def pseudo(message: str) -> str:
    """``"Join %(name)s"`` → ``"⟦Ĵǿīƞ %(name)s⟧"``: marked, accented, placeholders kept."""
    pieces, last = [], 0
    for match in _KEEP.finditer(message):
        pieces.append(message[last : match.start()].translate(_ACCENTED))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(message[last:].translate(_ACCENTED))
    return PSEUDO_OPEN + "".join(pieces) + PSEUDO_CLOSE


class _PseudoTranslations(NullTranslations):
    def gettext(self, message: str) -> str:
        return pseudo(message) if message else message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return pseudo(msgid1 if n == 1 else msgid2)

    def pgettext(self, context: str, message: str) -> str:
        return self.gettext(message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return self.ngettext(msgid1, msgid2, n)

    # Babel's and Flask-Babel's "u" spellings.
    ugettext = gettext
    ungettext = ngettext
    upgettext = pgettext
    unpgettext = npgettext  # type: ignore[assignment]


@cache
def _pseudo() -> NullTranslations:
    return _PseudoTranslations()


# ------------------------------------------------------------------ texts in a language


def N_(message: str) -> str:
    """Mark a text for the catalogues where it is defined; translate it where it is shown."""
    return message


class Text:
    """The texts of one language, for code that writes to a member outside a request.

    ``text("el").gettext("%(points)s points", points=120)``; the variables are substituted
    after translation, as Flask-Babel does, so a translator may move them.
    """

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._translations = translations(lang)

    def gettext(self, message: str, **variables: object) -> str:
        translated = self._translations.ugettext(message)
        return translated % variables if variables else translated

    def ngettext(self, singular: str, plural: str, num: int, **variables: object) -> str:
        variables.setdefault("num", num)
        return self._translations.ungettext(singular, plural, num) % variables


def text(lang: str) -> Text:
    return Text(lang)
