"""The Idempotency-Key's documented limit (1 to 200 printable characters) holds on every
write: a key of exactly 200 is stored and replays, also where it goes into the ledger's
own key behind a prefix (adjust, redeem_reward); one of 201 is a 422. The records and the
ledger stored it with a prefix in varchar(200), so a key near the limit was a 500 on
PostgreSQL (value too long) on every write."""

from __future__ import annotations

from api_helpers import POINTS, make_shop, new_member, new_program
from sqlalchemy import func, select

from walletpass.crm.models import IdempotencyRecord
from walletpass.loyalty.models import LedgerEntry, Member


def longest(name: str) -> str:
    """A key of exactly the documented maximum, one per write (a key names one request)."""
    return (f"{name}-" + "0123456789abcdef" * 13)[:200]


def _count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_key_of_the_documented_maximum_is_stored_and_replays(client, runtime):
    assert len(longest("member")) == 200
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    body = {"program_id": program["id"], "name": "Ana", "email": "ana@example.test"}
    headers = {"Idempotency-Key": longest("member")}
    created = shop.crm.post("/members", body, headers=headers)
    again = shop.crm("POST", "/members", 201, json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == created
    assert _count(runtime, Member) == 1

    path = f"/members/{created['id']}/transactions"
    adjust = {"type": "adjust", "points": 150, "reason": "goodwill"}
    headers = {"Idempotency-Key": longest("adjust")}
    out = shop.crm.post(path, adjust, headers=headers)
    assert out["balance"]["points"] == 150
    replay = shop.crm("POST", path, 201, json=adjust, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["balance"]["points"] == 150

    reward = {"program_id": program["id"], "name": "Mug", "cost_points": 100}
    reward_id = shop.admin.post("/rewards", reward)["id"]
    redeem = {"type": "redeem_reward", "reward_id": reward_id}
    headers = {"Idempotency-Key": longest("redeem")}
    out = shop.till.post(path, redeem, headers=headers)
    assert out["balance"]["points"] == 50
    replay = shop.till("POST", path, 201, json=redeem, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert shop.read.get(f"/members/{created['id']}")["points"] == 50
    with runtime.transaction(shop.merchant_id) as s:
        keys = list(s.scalars(select(LedgerEntry.idempotency_key)))
    # The adjustment and the redemption, each written once under its key.
    assert sum(longest("adjust") in k for k in keys) == 1
    assert sum(longest("redeem") in k for k in keys) == 1


def test_one_character_over_the_limit_is_a_422(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    member = new_member(shop, program["id"])
    records = _count(runtime, IdempotencyRecord)
    entries = _count(runtime, LedgerEntry)
    problem = shop.crm.post(
        f"/members/{member['id']}/transactions",
        {"type": "adjust", "points": 5, "reason": "x"},
        expect=422,
        headers={"Idempotency-Key": longest("over") + "x"},
    )
    assert problem["type"] == "/problems/validation-error"
    assert "200" in problem["detail"]
    assert (_count(runtime, IdempotencyRecord), _count(runtime, LedgerEntry)) == (records, entries)
