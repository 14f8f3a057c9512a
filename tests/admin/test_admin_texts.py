"""The admin's "Texts in other languages" pages: a column per language beside the default,
saved texts reaching the cards of the members who read them, too-long texts refused."""

# Greek capitals look like Latin ones, and these texts are Greek on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import factories
from markupsafe import escape
from pseudo_support import english_left
from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.app import create_app
from walletpass.cards.variables import pass_variables
from walletpass.loyalty.models import Program, Reward
from walletpass.loyalty.rules import validate_rules
from walletpass.offers.models import Offer
from walletpass.passes.models import Pass

TIERS = {
    "amount_per_point": "1",
    "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "100"}],
}


def _shop_with_members(runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(
        runtime,
        "tiers",
        name="Coffee Club",
        rules=validate_rules("tiers", TIERS).model_dump(mode="json"),
    )
    with runtime.transaction() as s:
        program = s.get(Program, shop.program_id)
        reward = Reward(
            merchant_id=shop.merchant_id, program_id=program.id, name="Free coffee", cost_points=5
        )
        s.add(reward)
        passes = {}
        for lang in ("el", "en"):
            member = factories.member(s, program, language=lang, tier="Gold", points_balance=9)
            passes[lang] = factories.member_pass(s, settings, member).id
        s.flush()
        return shop, reward.id, passes


def test_the_program_texts_page_saves_and_the_greek_card_changes(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop, reward_id, passes = _shop_with_members(runtime, settings)
    sign_in(client, shop.emails["marketer"])
    url = f"/admin/programs/{shop.program_id}/texts"
    # Linked from the program's page.
    assert url in client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    # The default for reference, and one box per other language for each text.
    for field in ("name.el", "name.zh-Hant", "name.zh-Hans", "tier.1.el", f"reward.{reward_id}.el"):
        assert f'name="{field}"' in page, field
    assert 'name="name.en"' not in page  # the merchant's own language is the default
    assert "Coffee Club" in page
    assert "Gold" in page

    with runtime.transaction() as s:
        before = {p.id: p.version for p in s.scalars(select(Pass))}
    r = post(
        client,
        url,
        {
            "name.el": "Λέσχη Καφέ",
            "name.zh-Hant": "",
            "tier.1.el": "Χρυσό",
            f"reward.{reward_id}.el": "Δωρεάν καφές",
        },
    )
    assert r.status_code == 302
    assert "members reading Ελληνικά" in client.get(r.headers["Location"]).get_data(as_text=True)
    with runtime.transaction() as s:
        program = s.get(Program, shop.program_id)
        assert program.translations == {"el": {"name": "Λέσχη Καφέ"}}
        assert program.rules["levels"][1]["names"] == {"el": "Χρυσό"}
        assert s.get(Reward, reward_id).translations == {"el": {"name": "Δωρεάν καφές"}}
        after = {p.id: p.version for p in s.scalars(select(Pass))}
        greek = pass_variables(s, s.get(Pass, passes["el"]), settings)
        english = pass_variables(s, s.get(Pass, passes["en"]), settings)
    assert after[passes["el"]] == before[passes["el"]] + 1  # one bump for three texts
    assert after[passes["en"]] == before[passes["en"]]
    assert (greek["program_name"], greek["tier"], greek["rewards_text"]) == (
        "Λέσχη Καφέ",
        "Χρυσό",
        "Δωρεάν καφές",
    )
    assert (english["program_name"], english["tier"]) == ("Coffee Club", "Gold")

    # Emptied boxes: back to the default.
    post(client, url, {"name.el": "", "tier.1.el": "", f"reward.{reward_id}.el": ""})
    with runtime.transaction() as s:
        program = s.get(Program, shop.program_id)
        assert program.translations == {}
        assert "names" not in program.rules["levels"][1]


def test_too_long_texts_are_refused_and_nothing_is_saved(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop, _reward_id, _passes = _shop_with_members(runtime, settings)
    sign_in(client, shop.emails["owner"])
    url = f"/admin/programs/{shop.program_id}/texts"
    r = post(client, url, {"name.el": "Λέσχη", "tier.0.el": "Μ" * 65})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert "Nothing was saved" in body
    assert str(escape("Tier: Member")) in body
    assert 'aria-invalid="true"' in body
    assert "Λέσχη" in body  # what was typed is shown back
    with runtime.transaction() as s:
        assert s.get(Program, shop.program_id).translations == {}


def test_the_offer_texts_page_in_greek(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop, _reward_id, _passes = _shop_with_members(runtime, settings)
    with runtime.transaction() as s:
        offer = Offer(
            merchant_id=shop.merchant_id,
            slug="half",
            title="Half price",
            terms="Once",
            discount={"type": "percent", "value": 50},
        )
        s.add(offer)
        s.flush()
        offer_id = offer.id
    sign_in(client, shop.emails["marketer"])
    url = f"/admin/offers/{offer_id}/texts"
    assert url in client.get(f"/admin/offers/{offer_id}").get_data(as_text=True)
    linked = client.get(f"/admin/offers/{offer_id}?lang=zh-Hant").get_data(as_text=True)
    assert f'<a href="{url}" data-testid="texts-link">其他語言的文字</a>' in linked
    # The page's own texts in the reader's language.
    page = client.get(url + "?lang=el").get_data(as_text=True)
    assert "Half price: κείμενα σε άλλες γλώσσες" in page
    assert "Αποθήκευση κειμένων" in page
    assert 'name="terms.zh-Hant"' in page
    r = post(client, url, {"title.el": "Μισή τιμή", "terms.el": "Μία φορά", "title.zh-Hans": ""})
    assert r.status_code == 302
    with runtime.transaction() as s:
        assert s.get(Offer, offer_id).translations == {
            "el": {"title": "Μισή τιμή", "terms": "Μία φορά"}
        }
    # Another merchant's offer is not reachable.
    other = make_shop(runtime)
    sign_in(client, other.emails["owner"])
    assert client.get(url).status_code == 404


def test_the_texts_page_has_no_english_left_under_the_pseudo_language(runtime, settings):  # type: ignore[no-untyped-def]
    shop, _reward_id, _passes = _shop_with_members(runtime, settings)
    app = create_app(
        runtime.settings.override(pseudo_locale=True), runtime=runtime, start_worker=False
    )
    client = app.test_client()
    sign_in(client, shop.emails["owner"])
    page = client.get(f"/admin/programs/{shop.program_id}/texts?lang=en-XA").get_data(as_text=True)
    # This page's part: its heading, explanation and form (the admin's frame is another's).
    own = page[page.index('<div class="wpa-head">') : page.index("</form>")]
    typed = ["Coffee Club", "Member", "Gold", "Free coffee"]  # the merchant's own texts
    assert english_left(own, allowed=typed, html=True) == []
