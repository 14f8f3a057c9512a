"""The reward catalogue page: list, add, change, retire; refused as the API refuses."""

from __future__ import annotations

import re
from datetime import timedelta

import factories
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.api.resources_schemas import RewardIn
from walletpass.db import utcnow
from walletpass.jobs.models import Job
from walletpass.loyalty.models import Program, Reward
from walletpass.passes.models import Pass

TIERS = {
    "amount_per_point": "1",
    "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "300"}],
}


def rewards(runtime, merchant_id):  # type: ignore[no-untyped-def]
    with runtime.transaction(merchant_id) as s:
        rows = list(s.scalars(select(Reward).order_by(Reward.id)))
        for row in rows:
            s.expunge(row)
        return rows


def a_card(runtime, settings, shop) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        return factories.member_pass(s, settings, factories.member(s, program)).id


def version(runtime, shop, pass_id: int) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction(shop.merchant_id) as s:
        return s.get(Pass, pass_id).version


def local(moment) -> str:  # type: ignore[no-untyped-def]
    # The form reads datetime-local values in the merchant's zone (Europe/Paris here).
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Europe/Paris")).strftime("%Y-%m-%dT%H:%M")


def test_add_change_and_retire_a_reward(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "tiers", rules=TIERS)
    pass_id = a_card(runtime, settings, shop)
    sign_in(client, shop.emails["marketer"])
    assert client.get("/admin/rewards").status_code == 200
    page = client.get(f"/admin/rewards/new?program_id={shop.program_id}").get_data(as_text=True)
    assert f'<option value="{shop.program_id}" selected>' in page
    start = utcnow() + timedelta(days=3)
    r = post(
        client,
        "/admin/rewards/new",
        {
            "program_id": str(shop.program_id),
            "name": "Free cake",
            "kind": "item",
            "cost_points": "150",
            "min_tier": "Gold",
            "stock": "20",
            "valid_from": local(start),
            "description": "Any slice",
            "active": "on",
        },
    )
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/admin/rewards?program_id={shop.program_id}")
    [reward] = rewards(runtime, shop.merchant_id)
    assert (reward.name, reward.cost_points, reward.min_tier, reward.stock) == (
        "Free cake",
        150,
        "Gold",
        20,
    )
    assert reward.active
    assert reward.valid_from is not None
    assert abs(reward.valid_from - start.replace(second=0, microsecond=0)) < timedelta(minutes=1)
    # The cards list it now, and again when it starts (the API's reward_saved).
    assert version(runtime, shop, pass_id) == 2
    with runtime.transaction(shop.merchant_id) as s:
        windows = list(s.scalars(select(Job).where(Job.kind == "reward.window")))
    assert [j.payload["reward_id"] for j in windows] == [reward.id]

    listing = client.get(f"/admin/rewards?program_id={shop.program_id}").get_data(as_text=True)
    assert "Free cake" in listing
    assert "150 points" in listing

    r = post(
        client,
        f"/admin/rewards/{reward.id}",
        {"name": "Free cake", "cost_points": "120", "min_tier": "", "active": "on"},
    )
    assert r.status_code == 302
    [reward] = rewards(runtime, shop.merchant_id)
    assert (reward.cost_points, reward.min_tier, reward.stock, reward.valid_from) == (
        120,
        None,
        None,
        None,
    )
    assert version(runtime, shop, pass_id) == 3

    # Retiring twice (a double click, a retry) retires once.
    for _ in range(2):
        assert post(client, f"/admin/rewards/{reward.id}/retire").status_code == 302
    assert not rewards(runtime, shop.merchant_id)[0].active
    assert version(runtime, shop, pass_id) == 4
    listing = client.get("/admin/rewards").get_data(as_text=True)
    assert "Reward “Free cake” retired." in listing  # the flash
    assert "Free cake</a>" not in listing
    assert "Free cake" in client.get("/admin/rewards?retired=1").get_data(as_text=True)


BAD = [
    ({"cost_points": "0"}, "cost_points", "Must be at least 1."),
    ({"cost_points": "many"}, "cost_points", "Enter a whole number."),
    ({"name": ""}, "name", "This field is required."),
    ({"stock": "-1"}, "stock", "Must be at least 0."),
    ({"kind": "voucher"}, "kind", "Pick one of the choices."),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD)
def test_what_the_api_refuses_the_page_refuses(client, runtime, change, field, message):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    sign_in(client, shop.emails["marketer"])
    form = {"program_id": str(shop.program_id), "name": "Cake", "kind": "item", "cost_points": "50"}
    body = {**form, **change}
    with pytest.raises(ValidationError):  # the API's own schema says no too
        RewardIn.model_validate({**body, "program_id": shop.program_id})
    r = post(client, "/admin/rewards/new", body)
    assert r.status_code == 422
    assert f'<p class="wp-error" data-field="{field}">{message}</p>' in r.get_data(as_text=True)
    assert rewards(runtime, shop.merchant_id) == []


def test_tiers_dates_and_programs_are_checked_as_the_api_checks_them(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "tiers", rules=TIERS)
    other = make_shop(runtime, "points")
    sign_in(client, shop.emails["marketer"])
    form = {"program_id": str(shop.program_id), "name": "Cake", "kind": "item", "cost_points": "50"}
    now = utcnow()
    for change, field, message in (
        (
            {"min_tier": "Platinum"},
            "min_tier",
            "Pick one of this program&#39;s tiers: Member, Gold.",
        ),
        (
            {"valid_from": local(now + timedelta(days=2)), "valid_until": local(now)},
            "valid_until",
            "The reward must end after it starts.",
        ),
        ({"valid_from": "next tuesday"}, "valid_from", "Enter a date and time."),
        ({"program_id": str(other.program_id)}, "program_id", "Pick one of your programs."),
        ({"program_id": ""}, "program_id", "Pick one of your programs."),
    ):
        r = post(client, "/admin/rewards/new", {**form, **change})
        assert r.status_code == 422, change
        body = r.get_data(as_text=True)
        assert f'<p class="wp-error" data-field="{field}">{message}</p>' in body, change
    assert rewards(runtime, shop.merchant_id) == []
    assert rewards(runtime, other.merchant_id) == []


def test_a_stamp_cards_own_reward_is_changed_in_its_rules_only(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "stamps", rules={"goal": 8, "reward_name": "Free coffee"})
    sign_in(client, shop.emails["marketer"])
    [card] = rewards(runtime, shop.merchant_id)
    assert card.card_stamps == 8
    page = client.get(f"/admin/rewards/{card.id}").get_data(as_text=True)
    assert "set in the program's rules" in page
    assert 'name="cost_points"' not in page
    r = post(client, f"/admin/rewards/{card.id}", {"name": "Tea", "cost_points": "2"})
    assert r.status_code == 409
    assert post(client, f"/admin/rewards/{card.id}/retire").status_code == 409
    assert rewards(runtime, shop.merchant_id)[0].name == "Free coffee"


def test_another_merchants_reward_is_404(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    other = make_shop(runtime, "points")
    with runtime.transaction(other.merchant_id) as s:
        reward = Reward(
            merchant_id=other.merchant_id, program_id=other.program_id, name="X", cost_points=5
        )
        s.add(reward)
        s.flush()
        reward_id = reward.id
    sign_in(client, shop.emails["owner"])
    assert client.get(f"/admin/rewards/{reward_id}").status_code == 404
    assert post(client, f"/admin/rewards/{reward_id}/retire").status_code == 404
    assert "X" not in client.get("/admin/rewards").get_data(as_text=True).split("<main")[1]
    assert rewards(runtime, other.merchant_id)[0].active


def test_a_till_account_cannot_reach_the_catalogue(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    sign_in(client, shop.emails["staff"])  # refused by the admin's sign-in: till only
    r = client.get("/admin/rewards")
    assert r.status_code == 302
    assert "/admin/login" in r.headers["Location"]


def test_a_double_submit_adds_the_reward_once(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    pass_id = a_card(runtime, settings, shop)
    sign_in(client, shop.emails["marketer"])
    page = client.get("/admin/rewards/new").get_data(as_text=True)
    key = re.search(r'name="key" value="([0-9a-f-]{36})"', page).group(1)
    form = {"program_id": str(shop.program_id), "name": "Cake", "cost_points": "50", "key": key}
    first = post(client, "/admin/rewards/new", form)
    again = post(client, "/admin/rewards/new", form)
    assert (first.status_code, again.status_code) == (302, 302)
    assert [r.name for r in rewards(runtime, shop.merchant_id)] == ["Cake"]
    assert version(runtime, shop, pass_id) == 2  # refreshed once
    assert "This reward was already added." in client.get(again.headers["Location"]).get_data(
        as_text=True
    )
    # A new rendering of the form is a new reward, even with the same fields.
    fresh = client.get("/admin/rewards/new").get_data(as_text=True)
    other = re.search(r'name="key" value="([0-9a-f-]{36})"', fresh).group(1)
    assert other != key
    assert post(client, "/admin/rewards/new", {**form, "key": other}).status_code == 302
    assert len(rewards(runtime, shop.merchant_id)) == 2
