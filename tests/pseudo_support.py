"""Finding English left untranslated: texts a reader sees, under the pseudo-language.

Under ``en-XA`` (Settings.pseudo_locale) every text that went through a catalogue comes out
as ``⟦Ĵǿīƞ ƞǿẇ⟧``; whatever Latin word is still plain on a page, in a pass or in a Google
object never went through one. ``english_left(html_or_text, allowed=...)`` lists those
words; ``allowed`` is what the test itself put there (a merchant's name, a member's).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html.parser import HTMLParser

from walletpass.i18n.catalogues import PSEUDO_CLOSE, PSEUDO_OPEN

_MARKED = re.compile(re.escape(PSEUDO_OPEN) + r".*?" + re.escape(PSEUDO_CLOSE), re.S)
_WORD = re.compile(r"[A-Za-z]{2,}")
# Names and codes that are the same in every language: brands, currency codes, units.
ALWAYS_ALLOWED = frozenset(
    {
        "walletpass",
        "Apple",
        "Wallet",
        "Google",
        "QR",
        "URL",
        "API",
        "EUR",
        "TWD",
        "HKD",
        "JPY",
        "USD",
        "GBP",
        "CNY",
        "SMTP",
        "JSON",
        "CSV",
        "ID",
        "PDF",
        "PNG",
        "SVG",
        "iPhone",
        "Android",
        "iOS",
        "pkpass",
        "http",
        "https",
        "www",
    }
)
# Attributes a reader sees or hears (a screen reader reads aria-label and alt).
_VISIBLE_ATTRIBUTES = frozenset({"alt", "title", "placeholder", "aria-label"})


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1
        for name, value in attrs:
            if value and name in _VISIBLE_ATTRIBUTES:
                self.pieces.append(value)
        values = dict(attrs)
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.pieces.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.pieces.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return "\n".join(parser.pieces)


def english_left(text: str, allowed: Iterable[str] = (), *, html: bool = False) -> list[str]:
    """The plain Latin words in ``text`` outside pseudo-translated runs and ``allowed``."""
    if html:
        text = visible_text(text)
    text = _MARKED.sub(" ", text)
    for value in sorted(allowed, key=len, reverse=True):
        if value:
            text = text.replace(value, " ")
    return [word for word in _WORD.findall(text) if word not in ALWAYS_ALLOWED]
