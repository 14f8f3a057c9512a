"""A merchant's texts in each language: a Greek member's pass and Google object read the
Greek names, an English member's the default ones, a member of a language given no text
the default too; the card and join pages follow the page's language."""

# Greek capitals look like Latin ones, and these texts are Greek on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import factories
import pytest
from sqlalchemy import select

from walletpass.cards.build import build_bundle
from walletpass.cards.variables import pass_variables
from walletpass.db import utcnow
from walletpass.google.objects import build_pass_resources
from walletpass.i18n.merchant_texts import (
    by_language,
    changed_languages,
    localised,
    replaced,
)
from walletpass.loyalty.models import Program, Reward
from walletpass.loyalty.rules import RulesError, validate_rules
from walletpass.loyalty.texts import set_program_texts
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.texts import set_offer_texts
from walletpass.passes.models import Pass
from walletpass.passes.services import issue_pass

ISSUER = "3388000000012345678"
TIERS = {
    "amount_per_point": "1",
    "levels": [
        {"name": "Member", "min_spend": "0"},
        {"name": "Gold", "min_spend": "100", "names": {"el": "Χρυσό", "zh-TW": "金卡"}},
    ],
}


# --- the resolver and the checks, pure ------------------------------------------------------


def test_a_language_without_its_own_text_reads_the_default() -> None:
    translations = {"el": {"name": "Κάρτα καφέ"}, "zh-Hant": {"name": "  "}}
    assert localised("Coffee card", translations, "name", "el") == "Κάρτα καφέ"
    assert localised("Coffee card", translations, "name", "zh-Hant") == "Coffee card"
    assert localised("Coffee card", translations, "name", "zh-Hans") == "Coffee card"
    assert localised("Coffee card", translations, "title", "el") == "Coffee card"
    assert localised("Coffee card", None, "name", "el") == "Coffee card"
    assert localised("Coffee card", translations, "name", None) == "Coffee card"


def test_regional_tags_are_read_as_ours_and_others_refused() -> None:
    assert by_language({"zh-TW": 1, "el-GR": 2, "zh-CN": 3}) == {
        "zh-Hant": 1,
        "el": 2,
        "zh-Hans": 3,
    }
    for bad in ({"fr": 1}, {"en-XA": 1}, {"zh-TW": 1, "zh-Hant": 2}):
        with pytest.raises(ValueError, match="is"):
            by_language(bad)


def test_replacing_one_language_leaves_the_others() -> None:
    before = {"el": {"name": "Α"}, "zh-Hant": {"name": "甲"}}
    after = replaced(before, {"el": {"name": "Β"}, "zh-Hans": {}})
    assert after == {"el": {"name": "Β"}, "zh-Hant": {"name": "甲"}}
    assert changed_languages(before, after) == {"el"}
    assert replaced(after, {"el": {}}) == {"zh-Hant": {"name": "甲"}}


def test_tier_names_are_checked_by_the_rules_and_stored_only_when_given() -> None:
    stored = validate_rules("tiers", TIERS).model_dump(mode="json")
    assert "names" not in stored["levels"][0]
    assert stored["levels"][1]["names"] == {"el": "Χρυσό", "zh-Hant": "金卡"}
    level = validate_rules("tiers", stored).levels[1]  # type: ignore[union-attr]
    assert (level.name_in("el"), level.name_in("zh-Hans"), level.name_in("en")) == (
        "Χρυσό",
        "Gold",
        "Gold",
    )
    bad = {**TIERS, "levels": [{"name": "Gold", "min_spend": "0", "names": {"fr": "Or"}}]}
    with pytest.raises(RulesError) as refused:
        validate_rules("tiers", bad)
    assert refused.value.errors[0]["field"] == "levels.0.names"
    long = {**TIERS, "levels": [{"name": "Gold", "min_spend": "0", "names": {"el": "Χ" * 65}}]}
    with pytest.raises(RulesError) as refused:
        validate_rules("tiers", long)
    assert refused.value.errors[0]["field"] == "levels.0.names.el"


# --- passes and Google objects -------------------------------------------------------------


def _greek_shop(session, settings):  # type: ignore[no-untyped-def]
    """A Greek-speaking shop's tiers program with every text in Greek and Traditional
    Chinese, an overlay offer, a reward, and members reading el, en and zh-Hans."""
    merchant = factories.merchant(session, currency="EUR", language="en")
    program = factories.program(
        session,
        merchant,
        "tiers",
        name="Coffee Club",
        rules=validate_rules("tiers", TIERS).model_dump(mode="json"),
        translations={"el": {"name": "Λέσχη Καφέ"}, "zh-Hant": {"name": "咖啡俱樂部"}},
    )
    session.add(
        Reward(
            merchant_id=merchant.id,
            program_id=program.id,
            name="Free coffee",
            cost_points=10,
            translations={"el": {"name": "Δωρεάν καφές"}},
        )
    )
    session.add(
        Offer(
            merchant_id=merchant.id,
            program_id=program.id,
            slug=f"overlay-{program.id}",
            title="Double points",
            description="This weekend only",
            discount={"type": "text", "text": "x2"},
            overlay=True,
            valid_from=utcnow() - timedelta(days=1),
            translations={"el": {"title": "Διπλοί πόντοι", "description": "Μόνο αυτό το Σ/Κ"}},
        )
    )
    passes = {}
    for lang in ("el", "en", "zh-Hans"):
        member = factories.member(
            session,
            program,
            language=lang,
            tier="Gold" if lang != "zh-Hans" else "Member",
            points_balance=50,
            lifetime_spend=Decimal("40") if lang == "zh-Hans" else Decimal("150"),
        )
        passes[lang] = factories.member_pass(session, settings, member)
    return merchant, program, passes


def test_each_member_reads_the_program_offer_tier_and_reward_in_their_language(
    runtime, settings
) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        _merchant, _program, passes = _greek_shop(s, settings)
        greek = pass_variables(s, passes["el"], settings)
        english = pass_variables(s, passes["en"], settings)
        simplified = pass_variables(s, passes["zh-Hans"], settings)
    assert greek["program_name"] == "Λέσχη Καφέ"
    assert greek["tier"] == "Χρυσό"
    assert greek["offer_title"] == "Διπλοί πόντοι"
    assert greek["offer_text"] == "Μόνο αυτό το Σ/Κ"
    assert greek["rewards_text"] == "Δωρεάν καφές"
    assert (english["program_name"], english["tier"], english["offer_title"]) == (
        "Coffee Club",
        "Gold",
        "Double points",
    )
    assert english["rewards_text"] == "Free coffee"
    # No Simplified Chinese texts were given: the defaults, the next level's name too.
    assert simplified["program_name"] == "Coffee Club"
    assert simplified["offer_title"] == "Double points"
    assert simplified["tier"] == "Member"
    assert simplified["next_tier_text"].endswith(" Gold")


def test_the_apple_pass_of_a_greek_member_carries_the_greek_names(runtime, settings) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        _merchant, _program, passes = _greek_shop(s, settings)
        bundle = build_bundle(s, settings, passes["el"])
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        pass_json = json.loads(archive.read("pass.json"))
    fields = {
        f["key"]: f
        for group in pass_json["storeCard"].values()
        if isinstance(group, list)
        for f in group
    }
    assert fields["tier"]["value"] == "Χρυσό"
    assert "Διπλοί πόντοι" in json.dumps(pass_json, ensure_ascii=False)
    assert pass_json["description"].endswith("Λέσχη Καφέ")


def test_the_google_object_and_class_of_a_greek_member(runtime, settings) -> None:  # type: ignore[no-untyped-def]
    google = settings.override(google_issuer_id=ISSUER)
    with runtime.transaction() as s:
        _merchant, _program, passes = _greek_shop(s, settings)
        greek = build_pass_resources(
            s, google, passes["el"], pass_variables(s, passes["el"], google)
        )
        english = build_pass_resources(
            s, google, passes["en"], pass_variables(s, passes["en"], google)
        )
    obj = greek.object_body
    assert obj["secondaryLoyaltyPoints"]["balance"] == {"string": "Χρυσό"}
    modules = {m["id"]: m for m in obj["textModulesData"]}
    assert modules["offer"]["header"] == "Διπλοί πόντοι"
    assert modules["rewards"]["body"] == "Δωρεάν καφές"
    assert english.object_body["secondaryLoyaltyPoints"]["balance"] == {"string": "Gold"}
    # One class for every holder, the same whoever's sync sends it: the default name, and
    # each language's for its phones.
    assert greek.class_body == english.class_body
    for resources in (greek, english):
        assert resources.class_body["programName"] == "Coffee Club"
        assert resources.class_body["localizedProgramName"] == {
            "defaultValue": {"language": "en", "value": "Coffee Club"},
            "translatedValues": [
                {"language": "el", "value": "Λέσχη Καφέ"},
                {"language": "zh-Hant", "value": "咖啡俱樂部"},
            ],
        }


def test_a_coupon_and_its_offer_class_in_greek(runtime, settings) -> None:  # type: ignore[no-untyped-def]
    google = settings.override(google_issuer_id=ISSUER)
    with runtime.transaction() as s:
        merchant = factories.merchant(s, currency="EUR", language="el")
        program = factories.program(s, merchant, "points")
        member = factories.member(s, program, language="el")
        offer = Offer(
            merchant_id=merchant.id,
            slug="half",
            title="Μισή τιμή",  # the default is the merchant's language: Greek
            terms="Μία φορά",
            discount={"type": "percent", "value": 50},
            translations={"en": {"title": "Half price", "terms": "Once"}},
        )
        s.add(offer)
        s.flush()
        coupon = Coupon(merchant_id=merchant.id, offer_id=offer.id, member_id=member.id)
        s.add(coupon)
        s.flush()
        pass_row = issue_pass(
            s,
            settings,
            merchant_id=merchant.id,
            template="coupon",
            program_id=program.id,
            member_id=member.id,
            coupon_id=coupon.id,
        )
        variables = pass_variables(s, pass_row, google)
        resources = build_pass_resources(s, google, pass_row, variables)
        english = pass_variables(s, pass_row, google, lang="en")
        english_class = build_pass_resources(s, google, pass_row, english).class_body
    assert (variables["coupon_title"], variables["coupon_terms"]) == ("Μισή τιμή", "Μία φορά")
    assert (english["coupon_title"], english["coupon_terms"]) == ("Half price", "Once")
    assert resources.class_body["title"] == "Μισή τιμή"
    # The class keeps the merchant's texts whoever reads: its details are the default terms.
    assert english_class == resources.class_body
    assert resources.class_body["details"] == "Μία φορά"
    assert resources.class_body["localizedTitle"] == {
        "defaultValue": {"language": "el", "value": "Μισή τιμή"},
        "translatedValues": [{"language": "en", "value": "Half price"}],
    }


# --- which cards change --------------------------------------------------------------------


def _versions(session) -> dict[int, int]:  # type: ignore[no-untyped-def]
    return {
        p.id: p.version
        for p in session.scalars(select(Pass).execution_options(populate_existing=True))
    }


def test_a_text_in_one_language_changes_only_its_readers_cards(runtime, settings) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        _merchant, program, passes = _greek_shop(s, settings)
        ids = {lang: p.id for lang, p in passes.items()}
        program_id = program.id
    with runtime.transaction() as s:
        program = s.get(Program, program_id)
        before = _versions(s)
        langs = set_program_texts(
            s,
            settings,
            program,
            {"el": {"name": "Λέσχη του Καφέ"}, "zh-Hant": {"name": "咖啡俱樂部"}},
        )
        assert langs == {"el"}
        after = _versions(s)
    assert after[ids["el"]] > before[ids["el"]]
    assert after[ids["en"]] == before[ids["en"]]
    assert after[ids["zh-Hans"]] == before[ids["zh-Hans"]]
    # The same texts again change nothing: a retried save bumps no card.
    with runtime.transaction() as s:
        program = s.get(Program, program_id)
        assert set_program_texts(s, settings, program, {"el": {"name": "Λέσχη του Καφέ"}}) == set()
        assert _versions(s) == after
    # A tier's Simplified Chinese name reaches the zh-Hans member's card only.
    with runtime.transaction() as s:
        program = s.get(Program, program_id)
        langs = set_program_texts(
            s, settings, program, {}, tier_names={"Member": {"zh-Hans": "会员"}}
        )
        assert langs == {"zh-Hans"}
        again = _versions(s)
        assert again[ids["zh-Hans"]] > after[ids["zh-Hans"]]
        assert again[ids["el"]] == after[ids["el"]]
        assert pass_variables(s, s.get(Pass, ids["zh-Hans"]), settings)["tier"] == "会员"


def test_an_offer_text_changes_its_coupons_and_overlay_cards_read_in_that_language(
    runtime, settings
) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        _merchant, _program, passes = _greek_shop(s, settings)
        ids = {lang: p.id for lang, p in passes.items()}
        offer = s.scalars(select(Offer)).one()
        before = _versions(s)
        assert set_offer_texts(s, settings, offer, {"zh-Hans": {"title": "双倍积分"}}) == {
            "zh-Hans"
        }
        after = _versions(s)
        assert after[ids["zh-Hans"]] > before[ids["zh-Hans"]]
        assert after[ids["el"]] == before[ids["el"]]
        assert pass_variables(s, s.get(Pass, ids["zh-Hans"]), settings)["offer_title"] == "双倍积分"


# --- the pages ------------------------------------------------------------------------------


def test_the_join_and_card_pages_name_the_program_in_the_page_language(
    client, runtime, settings
) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        _merchant, program, passes = _greek_shop(s, settings)
        slug, serial = program.slug, passes["en"].serial
        offer_slug = s.scalars(select(Offer.slug)).one()
    greek = client.get(f"/join/{slug}?lang=el").get_data(as_text=True)
    assert "Λέσχη Καφέ" in greek
    chinese = client.get(f"/join/{slug}?lang=zh-Hans").get_data(as_text=True)
    assert "Coffee Club" in chinese
    assert "Λέσχη" not in chinese
    # An English member's card page opened on a Greek phone: the Greek names.
    card = client.get(f"/p/{serial}?lang=el").get_data(as_text=True)
    assert "Λέσχη Καφέ" in card
    assert "Χρυσό" in card
    assert "Λέσχη Καφέ" in client.get(f"/join/{slug}/flyer?lang=el").get_data(as_text=True)
    claim = client.get(f"/offers/{offer_slug}/claim?lang=el").get_data(as_text=True)
    assert "Διπλοί πόντοι" in claim
    assert "Μόνο αυτό το Σ/Κ" in claim
    flyer = client.get(f"/offers/{offer_slug}/flyer?lang=zh-Hans").get_data(as_text=True)
    assert "Double points" in flyer
    card = client.get(f"/p/{serial}?lang=en").get_data(as_text=True)
    assert "Coffee Club" in card
    assert "Χρυσό" not in card
