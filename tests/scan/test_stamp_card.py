"""A stamp card completes: its goal and intermediate rewards are redeemable at the till
(POST /api/v1/scans), redeeming the goal's starts the card over with the extra stamps, and
the card shows where it stands (Apple's pass.json, Google's object)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from scan_helpers import Till, join, shop
from sqlalchemy import select
from test_scan_seed_examples import assert_ledger_matches

from walletpass import demo
from walletpass.cards.variables import pass_variables
from walletpass.google import objects
from walletpass.passes.models import Pass

# The demo café's own card: a free coffee at 10, a free cookie at 5.
CARD = demo.PROGRAMS[0]["rules"]


def _reward_id(out: dict[str, Any], name: str) -> int:
    found = [r["id"] for r in out["redeemable"]["rewards"] if r["name"] == name]
    assert found, f"{name!r} not redeemable: {out['redeemable']['rewards']}"
    return found[0]


def _names(out: dict[str, Any]) -> list[str]:
    return [r["name"] for r in out["redeemable"]["rewards"]]


def _shown(client, runtime, settings, card) -> tuple[str, str | None, str]:  # type: ignore[no-untyped-def]
    """(Apple's stamps field, Apple's ready-to-redeem field, Google's balance)."""
    r = client.get(f"/p/{card['serial']}.pkpass")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        store_card = json.loads(z.read("pass.json"))["storeCard"]
    apple = {
        f["key"]: f["value"] for f in store_card["primaryFields"] + store_card["secondaryFields"]
    }
    with runtime.transaction(card["merchant_id"], readonly=True) as s:
        pass_row = s.scalars(select(Pass).where(Pass.serial == card["serial"])).one()
        variables = pass_variables(s, pass_row, settings)
    google = objects.loyalty_object(variables, object_id="o", class_id="c", state="ACTIVE")
    return apple["stamps"], apple.get("reward"), google["loyaltyPoints"]["balance"]["string"]


@pytest.fixture
def demo_card(client, runtime, settings) -> tuple[dict[str, Any], dict[str, Any], Till]:  # type: ignore[no-untyped-def]
    """(the café, a member's card of the demo's stamp program, its till)."""
    cafe = shop(runtime, settings, "stamps", CARD)
    card = {**join(runtime, settings, cafe), "merchant_id": cafe["merchant_id"]}
    return cafe, card, Till(client, cafe["key"])


def test_the_demo_stamp_card_completes_and_starts_over(client, runtime, settings, demo_card):  # type: ignore[no-untyped-def]
    _, card, till = demo_card
    code = card["code"]

    out = till.scan(code=code, action="stamp", stamps=4, receipt_id="s1")
    assert _names(out) == []
    # The cookie at 5: reached, redeemable, given once, and the stamps stay on the card.
    out = till.scan(code=code, action="stamp", receipt_id="s2")
    assert out["rewards_reached"] == ["Free cookie"]
    cookie = _reward_id(out, "Free cookie")
    out = till.scan(code=code, action="redeem_reward", reward_id=cookie, receipt_id="c1")
    assert out["balance"]["stamps"] == 5
    assert out["redemption_code"]
    assert _names(out) == []
    again = till.scan(409, code=code, action="redeem_reward", reward_id=cookie, receipt_id="c2")
    assert again["type"] == "/problems/reward-unavailable"

    # The goal: reached at 10; the card keeps counting the stamps of the next one.
    out = till.scan(code=code, action="stamp", stamps=7, receipt_id="s3")
    assert out["rewards_reached"] == ["Free coffee"]
    assert out["balance"]["stamps"] == 12
    coffee = _reward_id(out, "Free coffee")
    assert _names(out) == ["Free coffee"]
    assert _shown(client, runtime, settings, card) == ("10/10 +2", "Free coffee", "10/10 +2")

    # Redeemed: the card starts over with the 2 extra stamps.
    out = till.scan(code=code, action="redeem_reward", reward_id=coffee, receipt_id="r1")
    assert out["balance"]["stamps"] == 2
    assert out["redemption_code"]
    assert _names(out) == []
    assert _shown(client, runtime, settings, card) == ("2/10", None, "2/10")

    # The next card has its own cookie.
    out = till.scan(code=code, action="stamp", stamps=3, receipt_id="s4")
    assert out["rewards_reached"] == ["Free cookie"]
    assert _names(out) == ["Free cookie"]
    assert _shown(client, runtime, settings, card) == ("5/10", "Free cookie", "5/10")
    assert_ledger_matches(runtime, card["member_id"])


def test_an_undone_reward_is_redeemable_again(client, demo_card):  # type: ignore[no-untyped-def]
    cafe, card, till = demo_card
    out = till.scan(code=card["code"], action="stamp", stamps=5, receipt_id="s1")
    cookie = _reward_id(out, "Free cookie")
    out = till.scan(code=card["code"], action="redeem_reward", reward_id=cookie, receipt_id="c")
    r = client.post(
        f"/api/v1/scans/{out['scan_id']}/undo", headers={"Authorization": f"Bearer {cafe['key']}"}
    )
    assert r.status_code == 200, r.json
    assert _names(till.scan(code=card["code"])) == ["Free cookie"]


def test_an_intermediate_reward_not_reached_is_refused(runtime, demo_card):  # type: ignore[no-untyped-def]
    _, card, till = demo_card
    full = till.scan(code=card["code"], action="stamp", stamps=10, receipt_id="s1")
    cookie = _reward_id(full, "Free cookie")
    coffee = _reward_id(full, "Free coffee")
    # Cookie and coffee both given; the new card has no stamps yet.
    till.scan(code=card["code"], action="redeem_reward", reward_id=cookie, receipt_id="c1")
    till.scan(code=card["code"], action="redeem_reward", reward_id=coffee, receipt_id="r1")
    problem = till.scan(
        409, code=card["code"], action="redeem_reward", reward_id=cookie, receipt_id="c2"
    )
    assert problem["type"] == "/problems/insufficient-points"
    assert_ledger_matches(runtime, card["member_id"])
