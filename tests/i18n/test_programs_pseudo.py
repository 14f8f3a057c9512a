"""The programs and rewards pages of the admin under the pseudo-language: every text a
marketer reads went through a catalogue (no plain English word left), for every kind of
program, with and without errors from this area's own checks, flashes included."""

from __future__ import annotations

import re

import factories
import pytest
from pseudo_support import english_left

from walletpass.app import create_app
from walletpass.loyalty.models import Reward
from walletpass.passes import templates
from walletpass.tenancy.models import Store, User
from walletpass.tenancy.users import hash_password

PASSWORD = "correct horse battery"
RULES = {
    "points": {"amount_per_point": "1", "points_to_currency": "0.05"},
    "tiers": {
        "amount_per_point": "1",
        "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "300"}],
    },
    "stamps": {
        "goal": 8,
        "reward_name": "Free coffee",
        "intermediate_rewards": [{"at": 4, "name": "Cookie"}],
    },
    "membership": {"paid": True, "price": "30"},
    "offers": {},
}


@pytest.fixture
def pseudo(runtime, settings):  # type: ignore[no-untyped-def]
    """A signed-in marketer's client of an app that offers en-XA, and what the test itself
    wrote (names, the email, the links), which the pages may show as they are."""
    app = create_app(settings.override(pseudo_locale=True), runtime=runtime, start_worker=False)
    client = app.test_client()
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Kafe", timezone="Europe/Athens", currency="EUR")
        programs = {
            kind: factories.program(s, merchant, kind, name=f"Club{kind}", rules=rules)
            for kind, rules in RULES.items()
        }
        s.add(Store(merchant_id=merchant.id, code="main", name="Main"))
        email = f"marketer{merchant.id}@example.test"
        s.add(
            User(
                merchant_id=merchant.id,
                email=email,
                password_hash=hash_password(PASSWORD),
                role="marketer",
            )
        )
        s.flush()
        reward = Reward(
            merchant_id=merchant.id,
            program_id=programs["points"].id,
            name="Cake",
            cost_points=50,
            min_tier=None,
            cause="Shelter",
        )
        s.add(reward)
        s.flush()
        ids = {kind: p.id for kind, p in programs.items()}
        slugs = [p.slug for p in programs.values()]
        reward_id = reward.id
        card_reward = s.query(Reward).filter(Reward.card_stamps == 8).one().id
    client.get("/admin/login?lang=en-XA")  # remembered in the cookie from here on
    with client.session_transaction() as session:
        session["csrf"] = "test-csrf-token-0123456789"
    client.post(
        "/admin/login",
        data={"email": email, "password": PASSWORD, "csrf_token": "test-csrf-token-0123456789"},
    )
    public = settings.public_url.rstrip("/")
    allowed = [
        "Kafe",
        email,
        *(f"Club{kind}" for kind in RULES),
        *(f"{public}/join/{slug}" for slug in slugs),
        *templates.list_templates(settings.templates_dir),
        "Cake",
        "Shelter",
        "Cookie",
        "Free coffee",
        "Europe/Athens",
        "English",  # the switcher names each language in itself
    ]
    return client, ids, reward_id, card_reward, allowed


def left(response, allowed) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 422), response.status_code
    html = response.get_data(as_text=True)
    assert re.search(r'<html lang="en-XA"', html)
    # The pass preview draws sample cards from the preview module's own texts (the admin
    # area's): this area's test reads the page around it.
    html = re.sub(r'<aside class="pv-wrap".*?</aside>', "", html, flags=re.S)
    return english_left(html, allowed, html=True)


def test_the_programs_and_rewards_pages_have_no_english_left(pseudo) -> None:  # type: ignore[no-untyped-def]
    client, ids, reward_id, card_reward, allowed = pseudo
    pages = [
        "/admin/programs",
        "/admin/rewards",
        "/admin/rewards?retired=1",
        f"/admin/rewards?program_id={ids['stamps']}",
        "/admin/rewards/new",
        f"/admin/rewards/{reward_id}",
        f"/admin/rewards/{card_reward}",
        *(f"/admin/programs/new?kind={kind}" for kind in RULES),
        *(f"/admin/programs/{program_id}" for program_id in ids.values()),
    ]
    for page in pages:
        assert left(client.get(page), allowed) == [], page


def test_errors_and_flashes_of_this_area_are_translated(pseudo) -> None:  # type: ignore[no-untyped-def]
    client, ids, reward_id, _card, allowed = pseudo
    with client.session_transaction() as session:  # signing in gave the session a new one
        token = {"csrf_token": session.setdefault("csrf", "test-csrf-token-0123456789")}
    # A reward refused on every field this page checks itself.
    refused = client.post(
        "/admin/rewards/new",
        data={
            **token,
            "program_id": str(ids["tiers"]),
            "name": "",
            "cost_points": "0",
            "stock": "x",
            "valid_from": "soon",
        },
    )
    assert refused.status_code == 422
    assert left(refused, allowed) == []
    refused = client.post(
        "/admin/rewards/new",
        data={
            **token,
            "program_id": str(ids["tiers"]),
            "name": "Cake",
            "cost_points": "5",
            "min_tier": "Platinum",
        },
    )
    assert left(refused, [*allowed, "Member", "Gold"]) == []
    # Saved, retired: the flashes on the next page.
    saved = client.post(
        f"/admin/rewards/{reward_id}",
        data={**token, "name": "Cake", "cost_points": "60", "active": "on"},
        follow_redirects=True,
    )
    assert left(saved, allowed) == []
    retired = client.post(f"/admin/rewards/{reward_id}/retire", data=token, follow_redirects=True)
    assert left(retired, allowed) == []
    # A program saved unchanged through its fields: "Saved." in the reader's language.
    page = client.get(f"/admin/programs/{ids['offers']}").get_data(as_text=True)
    form = {
        name: value
        for name, value in re.findall(r'<input id="[^"]*" name="([^"]+)"[^>]*value="([^"]*)"', page)
    }
    form.update(
        kind="offers",
        template=re.search(
            r'<option value="([^"]+)" selected', page[page.find('id="template"') :]
        ).group(1),
    )
    saved = client.post(
        f"/admin/programs/{ids['offers']}", data={**form, **token}, follow_redirects=True
    )
    assert saved.status_code == 200
    assert left(saved, allowed) == []
