"""/webhook-endpoints, /campaigns and /stats."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from api_helpers import POINTS, STAMPS, make_shop, new_member, new_program
from sqlalchemy import select

from walletpass import analytics
from walletpass.crm import outbound
from walletpass.crm.models import WebhookDelivery, WebhookEndpoint
from walletpass.db import utcnow
from walletpass.jobs.models import Job
from walletpass.passes.models import Pass, PassEvent
from walletpass.scan.models import Scan
from walletpass.security import unseal


def test_webhook_endpoint_crud_and_secret_shown_once(client, runtime, settings):
    shop = make_shop(runtime, client)
    made = shop.crm.post(
        "/webhook-endpoints",
        {"url": "https://crm.example.test/hook", "events": ["member.created", "points.changed"]},
    )
    secret = made.pop("secret")
    assert secret.startswith("whsec_")
    assert made["events"] == ["member.created", "points.changed"]
    assert made["active"] is True
    with runtime.transaction() as s:
        row = s.get(WebhookEndpoint, made["id"])
        assert unseal(settings.secret_key, row.secret_sealed).decode() == secret
    got = shop.crm.get(f"/webhook-endpoints/{made['id']}")
    assert got == made
    assert "secret" not in got
    rotated = shop.crm.post(f"/webhook-endpoints/{made['id']}/rotate-secret", expect=200)
    assert rotated["secret"] != secret

    bad = shop.crm.post("/webhook-endpoints", {"url": "ftp://x", "events": ["nope"]}, expect=422)
    assert {e["field"] for e in bad["errors"]} == {"body.url", "body.events.0"}
    bad = shop.crm.post("/webhook-endpoints", {"url": "https://x.test", "events": []}, 422)
    assert bad["errors"][0]["field"] == "body.events"

    changed = shop.crm.patch(
        f"/webhook-endpoints/{made['id']}", {"active": False, "events": ["pass.installed"]}
    )
    assert (changed["active"], changed["events"]) == (False, ["pass.installed"])
    more = [
        shop.crm.post(
            "/webhook-endpoints", {"url": f"https://h{i}.test/", "events": ["scan.recorded"]}
        )
        for i in range(2)
    ]
    listed = shop.admin.all_pages("/webhook-endpoints", limit=2)
    assert [e["id"] for e in listed] == [made["id"]] + [e["id"] for e in more]
    shop.crm.delete(f"/webhook-endpoints/{made['id']}")
    shop.crm.get(f"/webhook-endpoints/{made['id']}", 404)
    shop.till.get("/webhook-endpoints", 403)


def test_deliveries_and_redeliver(client, runtime):
    shop = make_shop(runtime, client)
    endpoint = shop.crm.post(
        "/webhook-endpoints", {"url": "https://crm.example.test/", "events": ["member.created"]}
    )
    with runtime.transaction(shop.merchant_id) as s:
        rows = [
            WebhookDelivery(
                merchant_id=shop.merchant_id,
                endpoint_id=endpoint["id"],
                event_id=f"evt{i}",
                event_type="member.created",
                payload={"n": i},
                status="dead" if i == 0 else "delivered",
            )
            for i in range(3)
        ]
        s.add_all(rows)
        s.flush()
        ids = [r.id for r in rows]
    path = f"/webhook-endpoints/{endpoint['id']}/deliveries"
    listed = shop.crm.all_pages(path, limit=2)
    assert [d["id"] for d in listed] == ids
    assert listed[0]["status"] == "dead"

    again = shop.crm.post(f"{path}/{ids[0]}/redeliver", expect=200)
    assert (again["id"], again["status"]) == (ids[0], "pending")
    with runtime.transaction(shop.merchant_id) as s:
        queued = s.scalars(select(Job).where(Job.kind == outbound.JOB_KIND)).all()
        assert [job.payload for job in queued] == [{"delivery_id": ids[0]}]
    shop.crm.patch(f"/webhook-endpoints/{endpoint['id']}", {"active": False})
    paused = shop.crm.post(f"{path}/{ids[1]}/redeliver", expect=422)
    assert paused["type"] == "/problems/action-not-allowed"
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(WebhookDelivery, ids[1]).status == "delivered"  # unchanged
    shop.crm.post(f"{path}/999999/redeliver", expect=404)
    shop.crm.get("/webhook-endpoints/999999/deliveries", 404)


def test_campaign_create_launch_progress(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "stamps", STAMPS)
    for _ in range(3):
        new_member(shop, program["id"], marketing_consent=True)
    preview = shop.crm.post(
        "/campaigns/audience-preview", {"audience": {"kind": "all"}}, expect=200
    )
    assert isinstance(preview["counts"], dict)
    bad = shop.crm.post("/campaigns/audience-preview", {"audience": {"kind": "x"}}, expect=422)
    assert bad["errors"][0]["field"] == "body.audience.kind"

    made = shop.crm.post(
        "/campaigns",
        {"name": "Spring", "message": "Double stamps this week", "program_id": program["id"]},
    )
    assert made["status"] == "draft"
    assert made["progress"]["total"] == 0
    bad = shop.crm.post(
        "/campaigns",
        {"name": "X", "message": "Y", "variants": [{"name": "A", "message": "a", "share": 0.3}]},
        expect=422,
    )
    assert bad["errors"][0]["field"] == "body.variants"
    launched = shop.crm.post(f"/campaigns/{made['id']}/launch", expect=200)
    assert launched["status"] in ("sending", "finished")
    assert (
        launched["total"] + launched["holdout_count"]
        == launched["progress"]["total"] + (launched["progress"]["holdout"])
    )
    got = shop.read.get(f"/campaigns/{made['id']}")
    assert got["id"] == made["id"]
    assert "progress" in got
    later = shop.crm.post(
        "/campaigns",
        {"name": "Later", "message": "Soon", "scheduled_at": "2099-01-01T09:00:00Z"},
    )
    assert later["status"] == "scheduled"
    cancelled = shop.crm.post(f"/campaigns/{later['id']}/cancel", expect=200)
    assert cancelled["status"] == "cancelled"
    again = shop.crm.post(f"/campaigns/{later['id']}/cancel", expect=409)
    assert again["type"] == "/problems/conflict"
    listed = shop.crm.all_pages("/campaigns", limit=1)
    assert [c["id"] for c in listed] == [made["id"], later["id"]]
    assert [c["id"] for c in shop.crm.get("/campaigns", status="cancelled")["data"]] == [
        later["id"]
    ]
    results = shop.crm.get(f"/campaigns/{made['id']}/results")
    assert results["campaign_id"] == made["id"]
    shop.crm.get("/campaigns/999999", 404)
    shop.till.get("/campaigns", 403)


def test_stats(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    members = [new_member(shop, program["id"]) for _ in range(2)]
    shop.crm.post(
        f"/members/{members[0]['id']}/transactions",
        {"type": "purchase", "amount": "30", "receipt_id": "a"},
    )
    with runtime.transaction(shop.merchant_id) as s:
        pass_ids = [p.id for p in s.query(Pass)]
        now = utcnow()
        for i, (platform, kind) in enumerate(
            [("apple", "installed"), ("apple", "installed"), ("google", "installed"),
             ("apple", "removed")]
        ):  # fmt: skip
            s.add(
                PassEvent(
                    merchant_id=shop.merchant_id,
                    pass_id=pass_ids[i % 2],
                    platform=platform,
                    kind=kind,
                    created_at=now - timedelta(hours=i),
                )
            )
    stats = shop.read.get("/stats", days=7)
    assert stats["days"] == 7
    assert len(stats["scans_per_day"]) == 7
    assert stats["installs"] == {"apple": 2, "google": 1}
    assert stats["removals"] == {"apple": 1, "google": 0}
    assert (stats["members_total"], stats["new_members"], stats["active_passes"]) == (2, 2, 2)
    assert (stats["outstanding_points"], stats["points_earned"]) == (30, 30)
    assert stats["outstanding_value"] == "3.00"
    assert shop.crm.get("/stats")["days"] == 30
    assert shop.crm.get("/stats", 422, days=0)["errors"][0]["field"] == "query.days"
    shop.till.get("/stats", 403)


def test_registering_a_private_address_is_a_422_and_saves_nothing(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, client)
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5:8080/",
        "http://[::ffff:a00:5]/",
    ):
        r = shop.admin(
            "POST", "/webhook-endpoints", 422, json={"url": url, "events": ["member.created"]}
        )
        assert r.json["type"] == "/problems/validation-error"
        assert "not a public address" in r.json["detail"]
        assert r.json["errors"][0]["field"] == "body.url"
    made = shop.admin.post(
        "/webhook-endpoints", {"url": "https://crm.example.com/hook", "events": ["member.created"]}
    )
    r = shop.admin(
        "PATCH",
        f"/webhook-endpoints/{made['id']}",
        422,
        json={"url": "http://192.168.0.10/hook"},
    )
    assert "not a public address" in r.json["detail"]
    with runtime.transaction() as s:
        assert s.scalars(select(WebhookEndpoint.url)).all() == ["https://crm.example.com/hook"]


def test_scans_count_what_the_till_did_not_lookups_refusals_or_undone_scans(client, runtime):  # type: ignore[no-untyped-def]
    # One customer at the till: the card is looked up, a purchase recorded, a second one
    # recorded by mistake and undone, a reward refused (too few points), the card looked
    # up again. The shop served one purchase: one scan, on the API and the dashboard alike.
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", POINTS)
    member = new_member(shop, program["id"])
    with runtime.transaction(shop.merchant_id) as s:
        code = s.scalars(select(Pass.barcode).where(Pass.member_id == member["id"])).one()
    scan = shop.till.post
    scan("/scans", {"code": code, "action": "lookup"}, expect=200)
    scan("/scans", {"code": code, "action": "purchase", "amount": "12", "receipt_id": "r1"}, 200)
    wrong = scan(
        "/scans", {"code": code, "action": "purchase", "amount": "99", "receipt_id": "r2"}, 200
    )
    scan(f"/scans/{wrong['scan_id']}/undo", expect=200)
    scan("/scans", {"code": code, "action": "redeem_reward", "reward_id": 999_999}, expect=404)
    scan("/scans", {"code": code, "action": "lookup"}, expect=200)
    with runtime.transaction(shop.merchant_id) as s:
        logged = s.scalars(select(Scan.action).order_by(Scan.id)).all()
    assert len(logged) == 5  # every scan is still logged for the staff's reports

    stats = shop.read.get("/stats", days=7)
    assert stats["scans_total"] == 1
    assert sum(d["count"] for d in stats["scans_per_day"]) == 1
    with runtime.transaction(shop.merchant_id) as s:
        period = analytics.Period.ending(utcnow(), 7, ZoneInfo("UTC"))
        assert analytics.dashboard(s, period).scans.total("scans") == 1
