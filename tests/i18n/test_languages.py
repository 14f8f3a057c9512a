"""Which of our languages a browser's or a CRM's tag means, and the catalogues' state."""

from __future__ import annotations

import pytest

from walletpass.i18n import extract
from walletpass.i18n.catalogues import pseudo, text
from walletpass.i18n.languages import PSEUDO, best_match, languages, normalise


def test_the_four_languages_are_found_from_their_catalogues() -> None:
    assert languages() == ("en", "el", "zh-Hans", "zh-Hant")


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("zh-TW", "zh-Hant"),
        ("zh_HK", "zh-Hant"),
        ("zh-MO", "zh-Hant"),
        ("zh-Hant-CN", "zh-Hant"),
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("el-GR", "el"),
        ("EL", "el"),
        ("en-GB", "en"),
        ("fr-FR", None),
        ("", None),
        ("en-XA", PSEUDO),
    ],
)
def test_a_tag_maps_to_the_script_its_readers_read(tag: str, language: str | None) -> None:
    assert normalise(tag) == language


def test_accept_language_takes_the_best_quality_we_speak() -> None:
    assert best_match([("fr", 1.0), ("zh-TW", 0.8), ("en", 0.5)]) == "zh-Hant"
    assert best_match([("en", 0.3), ("el", 0.9)]) == "el"
    assert best_match([("fr", 1.0), ("de", 0.9)]) is None
    # A browser cannot ask for the pseudo-language: it is a developer's, by ?lang= only.
    assert best_match([("en-XA", 1.0)]) is None


def test_pseudo_marks_a_text_and_keeps_its_placeholders_and_markup() -> None:
    marked = pseudo("Join %(program)s <b>now</b> &amp; save {amount}")
    assert marked.startswith("\u27e6")
    assert marked.endswith("\u27e7")
    assert "%(program)s" in marked
    assert "<b>" in marked
    assert "&amp;" in marked
    assert "{amount}" in marked
    assert "Join" not in marked
    assert "now" not in marked
    assert text(PSEUDO).ngettext("%(num)d stamp", "%(num)d stamps", 3).count("3") == 1


def test_variables_are_put_in_after_translation() -> None:
    assert text("en").gettext("%(points)s points", points="1,200") == "1,200 points"
    assert text("en").ngettext("%(num)d stamp", "%(num)d stamps", 1) == "1 stamp"


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_every_catalogue_translates_every_text_of_its_area(lang: str) -> None:
    """A text added to a page or a pass without its translations fails here, by name."""
    missing = [problem for area in extract.AREAS for problem in extract.problems(lang, area)]
    assert missing == [], "\n".join(missing[:40]) + (
        "\nrun: python -m walletpass.i18n.extract update, then translate" if missing else ""
    )


@pytest.mark.parametrize("lang", [lang for lang in languages() if lang != "en"])
def test_a_text_in_two_areas_is_translated_the_same_in_both(lang: str) -> None:
    """A language's catalogues are merged into one, so a text two areas share shows one of
    their translations everywhere: they must agree, or a page reads another area's words.
    A text whose meaning differs by place needs a text of its own ("no expiry", not "never")."""
    seen: dict[str, dict[str, object]] = {}
    for area in extract.AREAS:
        for message in extract.read(lang, area):
            if message.id and isinstance(message.id, str):
                seen.setdefault(message.id, {})[area] = message.string
    differing = {
        msgid: by_area
        for msgid, by_area in seen.items()
        if len(set(map(str, by_area.values()))) > 1
    }
    assert differing == {}
