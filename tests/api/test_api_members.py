"""/members and their transactions: enrolment with pass links, profile, ledger."""

from __future__ import annotations

import pytest
from api_helpers import POINTS, STAMPS, make_shop, new_member, new_program

from walletpass.loyalty.ledger import ledger_balance
from walletpass.loyalty.models import Member, Reward
from walletpass.passes.models import Pass


def _balance_matches_ledger(runtime, member_id):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        member = s.get(Member, member_id)
        assert (member.points_balance, member.stamps_balance) == ledger_balance(s, member_id)


def test_create_member_returns_pass_links(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    created = shop.crm.post(
        "/members",
        {"program": program["slug"], "name": "Ada", "email": "Ada@Example.test",
         "external_id": "crm-1", "birthday": "1990-05-01", "marketing_consent": True},
    )  # fmt: skip
    assert created["created"] is True
    assert (created["email"], created["points"], created["stamps"]) == ("ada@example.test", 0, None)
    (card,) = created["passes"]
    serial = card["serial"]
    base = "https://wallet.example.test/p/"
    assert card == {
        "serial": serial,
        "status": "active",
        "landing_url": base + serial,
        "apple_pkpass_url": f"{base}{serial}.pkpass",
        "google_save_url": None,  # Google Wallet is not configured in the tests
    }
    # A CRM retry (same external id) creates nobody twice.
    again = shop.crm.post("/members", {"program_id": program["id"], "external_id": "crm-1"})
    assert (again["created"], again["id"], again["passes"]) == (False, created["id"], [card])
    # So does the same email in the program.
    again = shop.till.post("/members", {"program_id": program["id"], "email": "ADA@example.test"})
    assert (again["created"], again["id"]) == (False, created["id"])
    with runtime.transaction() as s:
        assert s.query(Member).count() == 1


def test_google_save_link_when_google_is_configured(app, client, runtime, tmp_path):
    settings = runtime.settings.override(
        google_issuer_id="3388000000012345678", google_service_account_file=str(tmp_path / "sa")
    )
    runtime.settings = settings
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", STAMPS)
    card = new_member(shop, program["id"])["passes"][0]
    assert card["google_save_url"] == f"https://wallet.example.test/p/{card['serial']}/google"


def test_member_validation_and_conflicts(client, runtime):
    shop = make_shop(runtime, client)
    a = new_program(shop, "stamps", STAMPS)
    b = new_program(shop, "stamps", STAMPS)
    bad = shop.crm.post("/members", {"name": "x"}, expect=422)
    assert bad["errors"][0]["field"] == "body"
    bad = shop.crm.post("/members", {"program_id": a["id"], "email": "nope"}, expect=422)
    assert bad["errors"][0]["field"] == "body.email"
    bad = shop.crm.post("/members", {"program_id": 999999}, expect=422)
    assert bad["errors"] == [{"field": "body.program_id", "message": "unknown program"}]
    shop.crm.post("/members", {"program_id": a["id"], "external_id": "x"})
    clash = shop.crm.post("/members", {"program_id": b["id"], "external_id": "x"}, expect=409)
    assert clash["type"] == "/problems/conflict"
    shop.admin.patch(f"/programs/{b['id']}", {"active": False})
    bad = shop.crm.post("/members", {"program_id": b["id"]}, expect=422)
    assert bad["errors"][0]["message"] == "archived"


def test_list_get_patch_delete_members(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", STAMPS)
    made = [new_member(shop, program["id"], external_id=f"e{i}") for i in range(7)]
    listed = shop.read.all_pages("/members", limit=3)
    assert [m["id"] for m in listed] == [m["id"] for m in made]
    found = shop.crm.get("/members", external_id="e3")["data"]
    assert [m["id"] for m in found] == [made[3]["id"]]
    found = shop.crm.get("/members", email=made[2]["email"].upper())["data"]
    assert [m["id"] for m in found] == [made[2]["id"]]
    assert shop.till.get(f"/members/{made[0]['id']}")["passes"] == made[0]["passes"]

    member_id = made[0]["id"]
    with runtime.transaction() as s:
        version = s.query(Pass).filter(Pass.member_id == member_id).one().version
    changed = shop.crm.patch(
        f"/members/{member_id}", {"name": "Grace", "tags": {"vip": True}, "phone": None}
    )
    assert (changed["name"], changed["tags"]) == ("Grace", {"vip": True})
    with runtime.transaction() as s:
        assert s.query(Pass).filter(Pass.member_id == member_id).one().version == version + 1
    clash = shop.crm.patch(f"/members/{member_id}", {"external_id": "e1"}, expect=409)
    assert clash["type"] == "/problems/conflict"
    bad = shop.crm.patch(f"/members/{member_id}", {"language": "fr"}, expect=422)
    assert bad["errors"][0]["field"] == "body.language"

    shop.crm.delete(f"/members/{member_id}")
    erased = shop.crm.get(f"/members/{member_id}")
    assert (erased["name"], erased["email"], erased["external_id"]) == ("", None, None)
    assert [p["status"] for p in erased["passes"]] == ["voided"]
    shop.crm.get("/members/999999", 404)
    shop.crm.delete("/members/999999", 404)


def test_transactions_purchase_refund_adjust_and_ledger(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    member = new_member(shop, program["id"])
    path = f"/members/{member['id']}/transactions"
    out = shop.crm.post(path, {"type": "purchase", "amount": "25.50", "receipt_id": "r1"})
    assert (out["points_delta"], out["balance"]["points"], out["replayed"]) == (25, 25, False)
    assert out["entries"][0]["kind"] == "earn"
    assert out["entries"][0]["amount"] == "25.50"
    # Earn by receipt: the same receipt again counts once.
    again = shop.till.post(path, {"type": "purchase", "amount": "25.50", "receipt_id": "r1"})
    assert (again["replayed"], again["balance"]["points"]) == (True, 25)
    dup = shop.crm.post(path, {"type": "purchase", "amount": "9", "receipt_id": "r1"}, expect=409)
    assert dup["type"] == "/problems/duplicate-receipt"

    out = shop.crm.post(path, {"type": "refund", "receipt_id": "r1", "amount": "10.20"})
    assert out["points_delta"] == -10
    missing = shop.crm.post(path, {"type": "refund", "receipt_id": "zz", "amount": "1"}, expect=404)
    assert missing["type"] == "/problems/unknown-receipt"

    out = shop.crm.post(
        path, {"type": "adjust", "points": 100, "reason": "goodwill"},
        headers={"Idempotency-Key": "adj-1"},
    )  # fmt: skip
    assert out["balance"]["points"] == 115
    # A till may not hand out points.
    shop.till.post(path, {"type": "adjust", "points": 5, "reason": "x"}, expect=403)
    bad = shop.crm.post(path, {"type": "adjust", "points": 5}, expect=422)
    assert bad["errors"][0]["field"] == "body.reason"
    bad = shop.crm.post(path, {"type": "teleport"}, expect=422)
    assert bad["errors"][0]["field"] == "body"

    with runtime.transaction(shop.merchant_id) as s:
        reward = Reward(
            merchant_id=shop.merchant_id, program_id=program["id"], name="Mug", cost_points=100
        )
        s.add(reward)
        s.flush()
        reward_id = reward.id
    out = shop.till.post(
        path, {"type": "redeem_reward", "reward_id": reward_id, "receipt_id": "red-1"}
    )
    assert out["balance"]["points"] == 15
    assert len(out["redemption_code"]) == 10
    short = shop.till.post(
        path, {"type": "redeem_reward", "reward_id": reward_id, "receipt_id": "red-2"}, expect=409
    )
    assert short["type"] == "/problems/insufficient-points"
    stamp = shop.till.post(path, {"type": "stamp"}, expect=422)
    assert stamp["type"] == "/problems/action-not-allowed"

    ledger = shop.read.all_pages(path, limit=2)
    assert [e["kind"] for e in ledger] == ["earn", "refund", "adjust", "redeem"]
    assert sum(e["points"] for e in ledger) == 15
    _balance_matches_ledger(runtime, member["id"])
    shop.crm.get("/members/999999/transactions", 404)
    shop.crm.post("/members/999999/transactions", {"type": "stamp"}, expect=404)


def test_stamp_transactions(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", STAMPS)
    member = new_member(shop, program["id"])
    path = f"/members/{member['id']}/transactions"
    out = shop.till.post(path, {"type": "stamp", "stamps": 3, "store": shop.store_code})
    assert (out["stamps_delta"], out["balance"]["stamps"]) == (3, 3)
    assert out["entries"][0]["store_id"] == shop.store_id
    shop.till.post(path, {"type": "stamp", "receipt_id": "s-1"})
    again = shop.till.post(path, {"type": "stamp", "receipt_id": "s-1"})
    assert (again["replayed"], again["balance"]["stamps"]) == (True, 4)
    bad = shop.till.post(path, {"type": "stamp", "store": "nowhere"}, expect=422)
    assert bad["errors"][0]["field"] == "body.store"
    _balance_matches_ledger(runtime, member["id"])


@pytest.mark.parametrize("scope", ["till", "crm", "admin"])
def test_member_writers(client, runtime, scope):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", STAMPS)
    shop.as_(scope).post("/members", {"program_id": program["id"]})
    shop.read.post("/members", {"program_id": program["id"]}, expect=403)
