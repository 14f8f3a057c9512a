"""/rewards, /offers and /coupons."""

from __future__ import annotations

from api_helpers import POINTS, STAMPS, TIERS, make_shop, new_member, new_program

from walletpass.passes.models import Pass


def test_reward_crud(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "tiers", TIERS)
    made = [
        shop.admin.post(
            "/rewards", {"program_id": program["id"], "name": f"R{i}", "cost_points": 10 * (i + 1)}
        )
        for i in range(4)
    ]
    assert made[0]["kind"] == "item"
    assert made[0]["active"] is True
    assert [r["id"] for r in shop.till.all_pages("/rewards", limit=3)] == [r["id"] for r in made]
    gold = shop.admin.post(
        "/rewards",
        {"program_id": program["id"], "name": "Lounge", "cost_points": 5, "min_tier": "Gold",
         "valid_from": "2030-01-01T00:00:00+02:00", "stock": 3},
    )  # fmt: skip
    assert gold["valid_from"] == "2029-12-31T22:00:00Z"
    bad = shop.admin.post(
        "/rewards", {"program_id": program["id"], "name": "X", "cost_points": 5, "min_tier": "Pt"},
        expect=422,
    )  # fmt: skip
    assert bad["errors"][0]["field"] == "body.min_tier"
    bad = shop.admin.post(
        "/rewards",
        {"program_id": 999999, "name": "", "cost_points": 0,
         "valid_from": "2030-01-01T00:00:00"},
        expect=422,
    )  # fmt: skip
    assert {e["field"] for e in bad["errors"]} == {
        "body.name",
        "body.cost_points",
        "body.valid_from",
    }
    changed = shop.admin.patch(f"/rewards/{gold['id']}", {"stock": None, "cost_points": 7})
    assert (changed["stock"], changed["cost_points"]) == (None, 7)
    bad = shop.admin.patch(
        f"/rewards/{gold['id']}", {"valid_until": "2029-01-01T00:00:00Z"}, expect=422
    )
    assert bad["errors"][0]["field"] == "body.valid_until"
    shop.admin.delete(f"/rewards/{gold['id']}")
    assert shop.crm.get(f"/rewards/{gold['id']}")["active"] is False
    assert [r["id"] for r in shop.crm.get("/rewards", active="false")["data"]] == [gold["id"]]
    shop.crm.get("/rewards/999999", 404)
    shop.crm.post("/rewards", {"program_id": program["id"], "name": "X", "cost_points": 1}, 403)


def test_offer_crud_refreshes_coupon_passes(client, runtime):
    shop = make_shop(runtime, client)
    offer = shop.admin.post(
        "/offers",
        {"slug": "summer", "title": "Summer", "discount": {"type": "percent", "value": 20},
         "valid_until": "2099-01-01T00:00:00Z", "uses_per_coupon": 2},
    )  # fmt: skip
    assert offer["discount"] == {"type": "percent", "value": "20"}
    other = make_shop(runtime, client)
    taken = other.admin.post(
        "/offers", {"slug": "summer", "title": "X", "discount": {"type": "text", "text": "Hi"}}, 409
    )
    assert taken["type"] == "/problems/conflict"
    bad = shop.admin.post(
        "/offers", {"slug": "b", "title": "X", "discount": {"type": "percent", "value": 120}}, 422
    )
    assert bad["errors"][0]["field"] == "body.discount.percent.value"
    coupon = shop.crm.post("/coupons", {"offer_id": offer["id"]})
    with runtime.transaction() as s:
        version = s.query(Pass).filter(Pass.coupon_id == coupon["id"]).one().version
    changed = shop.admin.patch(
        f"/offers/{offer['id']}",
        {"title": "Summer sale", "discount": {"type": "amount", "value": "5.00"}},
    )
    assert (changed["title"], changed["discount"]["value"]) == ("Summer sale", "5.00")
    with runtime.transaction() as s:
        assert s.query(Pass).filter(Pass.coupon_id == coupon["id"]).one().version == version + 1
    shop.admin.patch(f"/offers/{offer['id']}", {"valid_until": None})
    assert shop.read.get(f"/offers/{offer['id']}")["valid_until"] is None
    made = [
        shop.admin.post(
            "/offers", {"slug": f"o{i}", "title": "T", "discount": {"type": "text", "text": "x"}}
        )
        for i in range(3)
    ]
    listed = shop.till.all_pages("/offers", limit=2)
    assert [o["id"] for o in listed] == [offer["id"]] + [o["id"] for o in made]
    shop.admin.delete(f"/offers/{offer['id']}")
    assert shop.read.get(f"/offers/{offer['id']}")["active"] is False
    assert shop.read.get(f"/coupons/{coupon['id']}")["usable_now"] is False
    shop.read.get("/offers/999999", 404)


def test_coupons_issue_redeem_void(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    member = new_member(shop, program["id"])
    offer = shop.admin.post(
        "/offers",
        {"slug": "coffee", "title": "Coffee", "discount": {"type": "amount", "value": "2.50"},
         "uses_per_coupon": 2, "program_id": program["id"]},
    )  # fmt: skip
    coupon = shop.crm.post("/coupons", {"offer_id": offer["id"], "member_id": member["id"]})
    assert (coupon["status"], coupon["uses_left"], coupon["usable_now"]) == ("active", 2, True)
    (link,) = coupon["passes"]
    assert link["apple_pkpass_url"].endswith(f"/p/{link['serial']}.pkpass")
    flyer = shop.crm.post("/coupons", {"offer_id": offer["id"]})
    assert flyer["member_id"] is None

    out = shop.till.post(f"/coupons/{coupon['id']}/redeem", expect=200)
    assert out["coupon"]["uses_left"] == 1
    assert out["rolled_over_to_coupon"] is None
    out = shop.till.post(f"/coupons/{coupon['id']}/redeem", expect=200)
    assert out["coupon"]["status"] == "used"
    used = shop.till.post(f"/coupons/{coupon['id']}/redeem", expect=409)
    assert used["type"] == "/problems/coupon-used"

    listed = shop.crm.all_pages("/coupons", limit=1, offer_id=offer["id"])
    assert [c["id"] for c in listed] == [coupon["id"], flyer["id"]]
    assert [c["id"] for c in shop.crm.get("/coupons", status="used")["data"]] == [coupon["id"]]
    assert [c["id"] for c in shop.crm.get("/coupons", member_id=member["id"])["data"]] == [
        coupon["id"]
    ]
    shop.crm.delete(f"/coupons/{flyer['id']}")
    void = shop.crm.get(f"/coupons/{flyer['id']}")
    assert (void["status"], void["passes"][0]["status"]) == ("void", "voided")
    assert shop.till.post(f"/coupons/{flyer['id']}/redeem", expect=409)["type"] == (
        "/problems/coupon-expired"
    )
    bad = shop.crm.post("/coupons", {"offer_id": 999999, "member_id": 999999}, expect=422)
    assert bad["errors"][0]["field"] == "body.offer_id"
    bad = shop.crm.post("/coupons", {"offer_id": offer["id"], "member_id": 999999}, expect=422)
    assert bad["errors"][0]["field"] == "body.member_id"
    shop.till.post("/coupons/999999/redeem", expect=404)
    shop.till.post("/coupons", {"offer_id": offer["id"]}, expect=403)


def test_stamp_reward_costs_stamps(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", STAMPS)
    reward = shop.admin.post(
        "/rewards", {"program_id": program["id"], "name": "Free coffee", "cost_points": 2}
    )
    member = new_member(shop, program["id"])
    path = f"/members/{member['id']}/transactions"
    shop.till.post(path, {"type": "stamp", "stamps": 3})
    out = shop.till.post(path, {"type": "redeem_reward", "reward_id": reward["id"]})
    assert (out["stamps_delta"], out["balance"]["stamps"]) == (-2, 1)


def test_no_coupon_for_an_offer_that_cannot_be_used(client, runtime):
    # The till would refuse it on every scan while the wallet shows it as valid.
    shop = make_shop(runtime, client)
    offer = shop.admin.post(
        "/offers",
        {"slug": "flash", "title": "Flash", "discount": {"type": "percent", "value": 10},
         "total_cap": 1},
    )  # fmt: skip
    used = shop.crm.post("/coupons", {"offer_id": offer["id"]})
    shop.till.post(f"/coupons/{used['id']}/redeem", expect=200)
    capped = shop.crm.post("/coupons", {"offer_id": offer["id"]}, expect=422)
    assert capped["errors"] == [
        {"field": "body.offer_id", "message": "offer 'flash' reached its cap"}
    ]
    shop.admin.patch(
        f"/offers/{offer['id']}", {"total_cap": None, "valid_until": "2020-01-01T00:00:00Z"}
    )
    ended = shop.crm.post("/coupons", {"offer_id": offer["id"]}, expect=422)
    assert ended["errors"][0]["message"] == "offer 'flash' has ended"
    shop.admin.patch(f"/offers/{offer['id']}", {"valid_until": None, "active": False})
    inactive = shop.crm.post("/coupons", {"offer_id": offer["id"]}, expect=422)
    assert inactive["errors"][0]["message"] == "offer 'flash' is not active"
    assert [c["id"] for c in shop.crm.all_pages("/coupons", limit=10)] == [used["id"]]


def test_a_catalogue_change_reaches_the_members_cards(client, runtime):
    # Cards list the rewards a member can redeem now; a new, changed or retired reward
    # changes that list.
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    new_member(shop, program["id"])

    def version() -> int:
        with runtime.transaction() as s:
            return s.query(Pass).filter(Pass.program_id == program["id"]).one().version

    start = version()
    reward = shop.admin.post(
        "/rewards", {"program_id": program["id"], "name": "Muffin", "cost_points": 10}
    )
    assert version() == start + 1
    shop.admin.patch(f"/rewards/{reward['id']}", {"name": "Muffin"})  # no change
    assert version() == start + 1
    shop.admin.patch(f"/rewards/{reward['id']}", {"cost_points": 8})
    assert version() == start + 2
    shop.admin.delete(f"/rewards/{reward['id']}")
    assert version() == start + 3
    shop.admin.delete(f"/rewards/{reward['id']}")  # already retired
    assert version() == start + 3
