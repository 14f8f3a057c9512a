"""/programs and /stores: CRUD, validation problems, pagination, pass refresh."""

from __future__ import annotations

from api_helpers import POINTS, STAMPS, make_shop, new_member, new_program
from sqlalchemy import select

from walletpass.loyalty.models import Program
from walletpass.passes.models import Pass


def test_program_crud_and_pagination(client, runtime):
    shop = make_shop(runtime, client)
    created = [new_program(shop, "stamps") for _ in range(5)]
    assert created[0]["template"] == "stamp_card"
    assert created[0]["join_url"] == f"https://wallet.example.test/join/{created[0]['slug']}"
    assert created[0]["rules"]["goal"] == 10
    listed = shop.admin.all_pages("/programs", limit=2)
    assert [p["id"] for p in listed] == [p["id"] for p in created]
    page = shop.till.get("/programs", limit=200)
    assert page["next_cursor"] is None
    assert len(page["data"]) == 5

    one = shop.read.get(f"/programs/{created[0]['id']}")
    assert one == created[0]
    changed = shop.admin.patch(f"/programs/{one['id']}", {"name": "Coffee card", "active": False})
    assert (changed["name"], changed["active"]) == ("Coffee card", False)
    assert [p["id"] for p in shop.admin.get("/programs", active="false")["data"]] == [one["id"]]
    shop.admin.delete(f"/programs/{one['id']}")
    shop.admin.get(f"/programs/{one['id']}", 404)


def test_program_validation_problems(client, runtime):
    shop = make_shop(runtime, client)
    bad = shop.admin.post(
        "/programs",
        {"slug": "x1", "name": "X", "kind": "stamps", "rules": {"goal": 1, "reward_nam": "A"}},
        expect=422,
    )
    assert bad["type"] == "/problems/validation-error"
    fields = {e["field"] for e in bad["errors"]}
    assert {"body.rules.goal", "body.rules.reward_name", "body.rules.reward_nam"} <= fields

    bad = shop.admin.post("/programs", {"slug": "Not A Slug", "kind": "nope"}, expect=422)
    assert {e["field"] for e in bad["errors"]} >= {"body.slug", "body.kind", "body.name"}

    bad = shop.admin.post(
        "/programs",
        {"slug": "x2", "name": "X", "kind": "points", "rules": {"amount_per_point": "1"},
         "template": "nope"},
        expect=422,
    )  # fmt: skip
    assert bad["errors"] == [{"field": "body.template", "message": "unknown pass template"}]

    bad = shop.admin.post(
        "/programs",
        {"slug": "x3", "name": "X", "kind": "points", "rules": {"amount_per_point": "1"},
         "design": {"background": "red"}},
        expect=422,
    )  # fmt: skip
    assert bad["errors"][0]["field"] == "body.design.background"

    new_program(shop, "stamps", slug="taken")
    other = make_shop(runtime, client)
    conflict = other.admin.post(
        "/programs", {"slug": "taken", "name": "X", "kind": "stamps", "rules": STAMPS}, expect=409
    )
    assert conflict["type"] == "/problems/conflict"
    shop.admin.get("/programs/999999", 404)
    assert shop.admin.get("/programs/99999999999999999999", 404)["type"] == "/problems/not-found"
    bad = shop.admin.get("/programs", 422, limit=0)
    assert bad["errors"][0]["field"] == "query.limit"
    bad = shop.admin.get("/programs", 422, cursor="garbage!")
    assert bad["errors"][0]["field"] == "query.cursor"


def test_new_rules_refresh_every_pass_and_member_programs_cannot_be_deleted(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps")
    members = [new_member(shop, program["id"]) for _ in range(3)]
    with runtime.transaction() as s:
        before = {p.id: p.version for p in s.query(Pass).filter(Pass.program_id == program["id"])}
    assert len(before) == 3
    # Same rules again: nothing shown changes, no pass is touched.
    shop.admin.patch(f"/programs/{program['id']}", {"rules": STAMPS})
    shop.admin.patch(f"/programs/{program['id']}", {"rules": {**STAMPS, "goal": 8}})
    with runtime.transaction() as s:
        after = {p.id: p.version for p in s.query(Pass).filter(Pass.program_id == program["id"])}
    assert all(after[i] == before[i] + 1 for i in before)
    shop.admin.patch(f"/programs/{program['id']}", {"design": {"background": "#112233"}})
    got = shop.admin.get(f"/programs/{program['id']}")
    assert (got["rules"]["goal"], got["design"]) == (8, {"background": "#112233"})
    bad = shop.admin.patch(f"/programs/{program['id']}", {"rules": {"goal": "x"}}, expect=422)
    assert bad["errors"][0]["field"].startswith("body.rules.")
    assert shop.admin.delete(f"/programs/{program['id']}", 409).json["type"] == "/problems/conflict"
    assert members


def test_store_crud(client, runtime):
    shop = make_shop(runtime, client)
    made = [
        shop.admin.post("/stores", {"code": f"s{i}", "name": f"Store {i}", "latitude": 1.5})
        for i in range(3)
    ]
    listed = shop.till.all_pages("/stores", limit=1)
    assert [s["id"] for s in listed] == [shop.store_id] + [s["id"] for s in made]
    assert shop.admin.post("/stores", {"code": "s0", "name": "Again"}, expect=409)["type"] == (
        "/problems/conflict"
    )
    bad = shop.admin.post("/stores", {"code": "has space", "name": "", "latitude": 91}, expect=422)
    assert {e["field"] for e in bad["errors"]} == {"body.code", "body.name", "body.latitude"}
    changed = shop.admin.patch(f"/stores/{made[0]['id']}", {"address": "1 Rue", "name": None})
    assert (changed["address"], changed["name"]) == ("1 Rue", "Store 0")
    assert shop.admin.patch(f"/stores/{made[0]['id']}", {"address": None})["address"] is None
    shop.admin.delete(f"/stores/{made[0]['id']}")
    shop.admin.get(f"/stores/{made[0]['id']}", 404)
    # The till key is bound to the main store: deleting it would widen the key.
    shop.admin.delete(f"/stores/{shop.store_id}", 409)


def test_at_most_ten_stores_have_coordinates(client, runtime):
    # Stores with coordinates are the pass's locations, and Wallet uses ten; the admin
    # pages refuse an eleventh, and so does the API.
    shop = make_shop(runtime, client)
    located = [
        shop.admin.post(
            "/stores",
            {"code": f"l{i}", "name": f"L{i}", "latitude": 48.0 + i / 100, "longitude": 2.3},
        )
        for i in range(10)
    ]
    refused = shop.admin.post(
        "/stores", {"code": "l10", "name": "L10", "latitude": 48.5, "longitude": 2.3}, expect=422
    )
    assert refused["type"] == "/problems/validation-error"
    assert [e["field"] for e in refused["errors"]] == ["body.latitude"]
    assert "l10" not in {s["code"] for s in shop.admin.all_pages("/stores", limit=50)}
    # Without coordinates a store is for the till only, and not counted.
    plain = shop.admin.post("/stores", {"code": "back", "name": "Back office"})
    refused = shop.admin.patch(
        f"/stores/{plain['id']}", {"latitude": 48.5, "longitude": 2.3}, expect=422
    )
    assert [e["field"] for e in refused["errors"]] == ["body.latitude"]
    assert shop.admin.get(f"/stores/{plain['id']}")["latitude"] is None  # nothing changed
    # A located store may move, and clearing one frees a place.
    moved = shop.admin.patch(f"/stores/{located[0]['id']}", {"latitude": 45.0})
    assert moved["latitude"] == 45.0
    shop.admin.patch(f"/stores/{located[0]['id']}", {"latitude": None, "longitude": None})
    now = shop.admin.patch(f"/stores/{plain['id']}", {"latitude": 48.5, "longitude": 2.3})
    assert (now["latitude"], now["longitude"]) == (48.5, 2.3)


def test_a_design_change_keeps_the_images_uploaded_in_the_admin(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", design={"background": "#112233"})
    uploaded = {"images": {"logo.png": f"designs/{program['id']}/logo.png"}, "images_version": "7"}
    with runtime.transaction(shop.merchant_id) as s:
        row = s.get(Program, program["id"])
        row.design = {**row.design, **uploaded}  # what the admin's upload stores
    changed = shop.admin.patch(
        f"/programs/{program['id']}", {"design": {"background": "#445566", "logo_text": "Beans"}}
    )
    assert changed["design"] == {"background": "#445566", "logo_text": "Beans", **uploaded}
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Program, program["id"]).design["images"] == uploaded["images"]


def _offer(shop, program_id: int) -> dict:  # type: ignore[no-untyped-def]
    body = {"slug": f"o{program_id}", "title": "Coffee", "program_id": program_id}
    return shop.admin.post("/offers", {**body, "discount": {"type": "amount", "value": "2.00"}})


def test_a_template_change_moves_the_cards_and_leaves_the_coupons(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    member = new_member(shop, program["id"])
    offer = _offer(shop, program["id"])
    shop.crm.post("/coupons", {"offer_id": offer["id"], "member_id": member["id"]})
    shop.crm.post("/coupons", {"offer_id": offer["id"]})  # a flyer coupon, no member
    with runtime.transaction(shop.merchant_id) as s:
        passes = s.scalars(select(Pass).where(Pass.program_id == program["id"])).all()
        before = {p.id: (p.template, p.version, p.coupon_id is None) for p in passes}
    assert sorted(t for t, _v, _card in before.values()) == ["coupon", "coupon", "points_tiers"]

    shop.admin.patch(f"/programs/{program['id']}", {"template": "membership"})
    with runtime.transaction(shop.merchant_id) as s:
        for pass_id, (template, version, is_card) in before.items():
            row = s.get(Pass, pass_id)
            assert row.template == ("membership" if is_card else template)
            assert row.version == version + 1  # every pass of the program is re-fetched


def test_an_offers_programs_cards_move_with_its_template_after_rolling_over(client, runtime):
    # An offers program's card is a coupon pass that moves from offer to offer; it is the
    # program's card all the same.
    shop = make_shop(runtime, client)
    program = new_program(shop, "offers")
    member = new_member(shop, program["id"])
    offer = _offer(shop, program["id"])
    coupon = shop.crm.post("/coupons", {"offer_id": offer["id"], "member_id": member["id"]})
    with runtime.transaction(shop.merchant_id) as s:
        card = s.scalars(
            select(Pass).where(Pass.member_id == member["id"], Pass.coupon_id.is_(None))
        ).one()
        card.coupon_id = coupon["id"]  # where a rollover leaves it
        card_id = card.id
    assert program["template"] == "coupon"
    shop.admin.patch(f"/programs/{program['id']}", {"template": "membership"})
    with runtime.transaction(shop.merchant_id) as s:
        templates = {p.id: p.template for p in s.scalars(select(Pass))}
    assert templates[card_id] == "membership"
    assert set(templates.values()) == {"membership"}
