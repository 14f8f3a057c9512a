"""Inbound CRM webhooks: signature, replay protection, each event through the domain."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import factories
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from walletpass.crm import schemas
from walletpass.crm.inbound import create_source, rotate_source
from walletpass.crm.models import InboundEvent, InboundSource
from walletpass.db import utcnow
from walletpass.jobs.models import Job
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass

_ids = itertools.count(1)


@dataclass
class Crm:
    merchant_id: int
    program_slug: str
    source: str
    secret: str
    offer_slug: str


@pytest.fixture
def crm(runtime, settings) -> Crm:
    with runtime.transaction() as session:
        merchant = factories.merchant(session)
        session.info["merchant_id"] = merchant.id
        program = factories.program(session, merchant, "points")
        source, secret = create_source(
            session,
            settings,
            merchant_id=merchant.id,
            name=f"hubspot-{merchant.id}",
            program_id=program.id,
        )
        offer = Offer(
            merchant_id=merchant.id,
            slug=f"spring-{merchant.id}",
            title="20% off",
            discount={"type": "percent", "value": 20},
        )
        session.add(offer)
        session.flush()
        return Crm(merchant.id, program.slug, source.name, secret, offer.slug)


def sign(secret: str, body: bytes, t: int) -> str:
    # Computed here from the documented recipe, not with walletpass.crm.signing.
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(event_type: str, data: dict, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt-{next(_ids)}",
        "type": event_type,
        "created": int(time.time()),
        "data": data,
    }


def post(client, crm: Crm, doc, *, secret=None, t=None, header=None, body=None):  # type: ignore[no-untyped-def]
    raw = body if body is not None else json.dumps(doc).encode()
    if header is None:
        header = sign(secret or crm.secret, raw, t if t is not None else int(time.time()))
    return client.post(
        f"/webhooks/crm/{crm.source}",
        data=raw,
        headers={"Walletpass-Signature": header, "Content-Type": "application/json"},
    )


def accepted(doc: dict) -> None:
    """Every payload the service accepts is valid for its published schema."""
    validator = Draft202012Validator(
        json.loads((schemas.SCHEMA_DIR / "inbound" / f"{doc['type']}.schema.json").read_text()),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(doc)


def send(client, crm: Crm, doc: dict):  # type: ignore[no-untyped-def]
    response = post(client, crm, doc)
    assert response.status_code == 200, response.get_data(as_text=True)
    accepted(doc)
    return response.get_json()


def counts(runtime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Member, LedgerEntry, InboundEvent, Coupon, Pass, Job)
        }


def upsert(external_id="crm-1", email="ana@example.test", **extra) -> dict:  # type: ignore[no-untyped-def]
    return event(
        "member.upsert", {"external_id": external_id, "email": email, "name": "Ana", **extra}
    )


# --- signature ----------------------------------------------------------------------------


def test_valid_signature_is_accepted(client, crm):
    response = post(client, crm, upsert())
    assert response.status_code == 200
    assert response.get_json()["status"] == "applied"


# A timestamp ahead of the clock loses the test's own run time and int() truncation
# from its lead (t = now+301 can arrive 299.5 s ahead), so the future case keeps a margin.
@pytest.mark.parametrize("age", [301, -330, 3600])
def test_timestamp_outside_five_minutes_is_refused(client, crm, runtime, age):
    before = counts(runtime)
    response = post(client, crm, upsert(), t=int(time.time()) - age)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "/problems/invalid-signature"
    assert "tolerance" in response.get_json()["detail"]
    assert counts(runtime) == before


def test_tampered_body_is_refused(client, crm, runtime):
    raw = json.dumps(upsert()).encode()
    header = sign(crm.secret, raw, int(time.time()))
    tampered = raw.replace(b'"Ana"', b'"Eve"')
    response = post(client, crm, None, header=header, body=tampered)
    assert response.status_code == 401
    assert counts(runtime)["Member"] == 0


def test_wrong_secret_is_refused(client, crm, runtime):
    response = post(client, crm, upsert(), secret="whsec_not-the-secret")
    assert response.status_code == 401
    assert counts(runtime)["InboundEvent"] == 0


@pytest.mark.parametrize(
    "header",
    ["", "v1=abc", "t=123", "t=abc,v1=00", "garbage"],
)
def test_malformed_or_missing_header_is_refused(client, crm, header):
    response = post(client, crm, upsert(), header=header)
    assert response.status_code == 401


def test_unknown_source_looks_like_a_bad_signature(client, crm):
    raw = json.dumps(upsert()).encode()
    response = client.post(
        "/webhooks/crm/no-such-source",
        data=raw,
        headers={"Walletpass-Signature": sign(crm.secret, raw, int(time.time()))},
    )
    assert response.status_code == 401
    assert response.get_json()["type"] == "/problems/invalid-signature"


def test_rotation_accepts_old_and_new_until_the_grace_ends(client, crm, runtime, settings):
    old = crm.secret
    with runtime.transaction(crm.merchant_id) as session:
        source = session.scalars(select(InboundSource)).one()
        new = rotate_source(session, settings, source, grace=timedelta(hours=1))
    assert post(client, crm, upsert("a", "a@example.test"), secret=old).status_code == 200
    assert post(client, crm, upsert("b", "b@example.test"), secret=new).status_code == 200
    # Both signatures in one header (a sender mid-rotation): any match is enough.
    raw = json.dumps(upsert("c", "c@example.test")).encode()
    t = int(time.time())
    both = sign("whsec_wrong", raw, t) + "," + sign(new, raw, t).split(",")[1]
    assert post(client, crm, None, header=both, body=raw).status_code == 200
    with runtime.transaction(crm.merchant_id) as session:
        source = session.scalars(select(InboundSource)).one()
        source.previous_expires_at = utcnow() - timedelta(seconds=1)
    assert post(client, crm, upsert("d", "d@example.test"), secret=old).status_code == 401
    assert post(client, crm, upsert("e", "e@example.test"), secret=new).status_code == 200


def test_rotation_without_grace_revokes_the_old_secret(client, crm, runtime, settings):
    with runtime.transaction(crm.merchant_id) as session:
        source = session.scalars(select(InboundSource)).one()
        new = rotate_source(session, settings, source, grace=timedelta(0))
    assert post(client, crm, upsert(), secret=crm.secret).status_code == 401
    assert post(client, crm, upsert(), secret=new).status_code == 200


# --- replays ----------------------------------------------------------------------------


def test_replay_is_ignored(client, crm, runtime):
    doc = event("points.adjust", {"member": {"external_id": "crm-1"}, "points": 5, "reason": "x"})
    send(client, crm, upsert())
    assert send(client, crm, doc)["status"] == "applied"
    assert send(client, crm, doc)["status"] == "duplicate"
    with runtime.transaction() as session:
        member = session.scalars(select(Member)).one()
        assert member.points_balance == 5


def test_twenty_parallel_replays_apply_once(app, crm, runtime):
    with app.test_client() as c:
        send(c, crm, upsert())
    doc = event(
        "purchase",
        {"member": {"external_id": "crm-1"}, "receipt_id": "R-par", "amount": "40.00"},
    )
    raw = json.dumps(doc).encode()
    barrier = threading.Barrier(20)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def replay() -> None:
        client = app.test_client()  # one client per thread, like 20 separate deliveries
        header = sign(crm.secret, raw, int(time.time()))
        barrier.wait(timeout=30)
        response = client.post(
            f"/webhooks/crm/{crm.source}", data=raw, headers={"Walletpass-Signature": header}
        )
        with lock:
            results.append((response.status_code, (response.get_json() or {}).get("status")))

    threads = [threading.Thread(target=replay) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 20
    assert all(code == 200 for code, _ in results), results
    assert sorted(status for _, status in results).count("applied") == 1
    with runtime.transaction() as session:
        member = session.scalars(select(Member)).one()
        earns = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "earn")).all()
        assert len(earns) == 1
        assert member.points_balance == 40
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 2


# --- each event through the domain -------------------------------------------------------


def test_member_upsert_creates_then_updates(client, crm, runtime):
    created = send(
        client,
        crm,
        upsert(
            phone="+351 900",
            birthday="1990-04-12",
            marketing_consent=True,
            tags={"vip": True},
        ),
    )
    assert created["result"]["created"] is True
    assert created["result"]["pass_url"].endswith("/p/" + created["result"]["pass_serial"])
    updated = send(
        client,
        crm,
        event("member.upsert", {"external_id": "crm-1", "name": "Ana Lima", "phone": None}),
    )
    assert updated["result"] == {
        "member_id": created["result"]["member_id"],
        "created": False,
        "changed": True,
    }
    # By email, adding the external id to a member enrolled elsewhere (e.g. the join page).
    send(client, crm, event("member.upsert", {"email": "bo@example.test", "name": "Bo"}))
    send(client, crm, event("member.upsert", {"email": "BO@example.test", "external_id": "crm-2"}))
    with runtime.transaction() as session:
        ana = session.scalars(select(Member).where(Member.external_id == "crm-1")).one()
        assert (ana.name, ana.phone, str(ana.birthday), ana.marketing_consent) == (
            "Ana Lima",
            None,
            "1990-04-12",
            True,
        )
        assert ana.tags == {"vip": True}
        assert ana.source == f"crm:{crm.source}"
        bo = session.scalars(select(Member).where(Member.email == "bo@example.test")).one()
        assert bo.external_id == "crm-2"
        assert session.scalar(select(func.count()).select_from(Member)) == 2
        # A new member gets a pass, and member.created went through the domain.
        assert session.scalar(select(func.count()).select_from(Pass)) == 2


def test_member_upsert_conflicting_keys_is_refused(client, crm, runtime):
    send(client, crm, upsert("crm-1", "ana@example.test"))
    response = post(client, crm, upsert("crm-9", "ana@example.test"))
    assert response.status_code == 409
    assert counts(runtime)["InboundEvent"] == 1


def test_purchase_earns_by_receipt_idempotently(client, crm, runtime):
    send(client, crm, upsert())
    data = {
        "member": {"external_id": "crm-1"},
        "receipt_id": "POS-1",
        "amount": "25.50",
        "currency": "EUR",
        "at": "2026-01-01T09:30:00Z",
        "lines": [{"amount": "25.50", "category": None}],
    }
    first = send(client, crm, event("purchase", data))["result"]
    assert (first["points"], first["points_balance"], first["replayed"]) == (25, 25, False)
    # Same receipt under a new event id (the CRM re-sent it): earns nothing again.
    second = send(client, crm, event("purchase", data))["result"]
    assert (second["replayed"], second["points_balance"]) == (True, 25)
    # Same receipt, different amount: the domain refuses; nothing is recorded.
    response = post(client, crm, event("purchase", {**data, "amount": "99.00"}))
    assert response.status_code == 409
    assert response.get_json()["type"] == "/problems/duplicate-receipt"
    with runtime.transaction() as session:
        entry = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "earn")).one()
        assert (entry.actor_type, entry.actor_id, entry.amount) == (
            "crm",
            crm.source,
            Decimal("25.50"),
        )


def test_refund_reverses_the_receipt(client, crm, runtime):
    send(client, crm, upsert())
    member = {"email": "ana@example.test"}
    send(client, crm, event("purchase", {"member": member, "receipt_id": "R1", "amount": "40"}))
    refund = {"member": member, "receipt_id": "R1", "amount": "10.00", "refund_id": "x1"}
    result = send(client, crm, event("refund", refund))["result"]
    assert (result["points"], result["points_balance"]) == (-10, 30)
    assert send(client, crm, event("refund", refund))["result"]["replayed"] is True
    unknown = post(client, crm, event("refund", {**refund, "receipt_id": "nope"}))
    assert unknown.status_code == 404
    assert unknown.get_json()["type"] == "/problems/unknown-receipt"


def test_points_adjust(client, crm, runtime):
    send(client, crm, upsert())
    with runtime.transaction() as session:
        member = {"id": session.scalars(select(Member.id)).one()}
    doc = event("points.adjust", {"member": member, "points": 5, "reason": "goodwill"})
    result = send(client, crm, doc)["result"]
    assert result["points_balance"] == 5
    with runtime.transaction() as session:
        entry = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "adjust")).one()
        assert entry.reason == "goodwill"
        assert entry.idempotency_key.endswith(doc["id"])
    # Below zero: refused, nothing changed (no program rule allows a negative balance).
    below = event("points.adjust", {"member": member, "points": -6, "reason": "correction"})
    refused = post(client, crm, below)
    assert (refused.status_code, refused.mimetype) == (422, "application/problem+json")
    assert "below zero" in refused.json["detail"]
    assert (
        send(client, crm, event("points.adjust", {**below["data"], "points": -5}))["result"][
            "points_balance"
        ]
        == 0
    )


def test_member_tag(client, crm, runtime):
    send(client, crm, upsert(tags={"lapsed": True, "segment": "a"}))
    doc = event(
        "member.tag",
        {
            "member": {"external_id": "crm-1"},
            "add": ["vip"],
            "remove": ["lapsed"],
            "set": {"segment": "regulars", "score": 7},
        },
    )
    assert send(client, crm, doc)["result"]["tags"] == {
        "vip": True,
        "segment": "regulars",
        "score": 7,
    }
    with runtime.transaction() as session:
        assert session.scalars(select(Member)).one().tags == {
            "vip": True,
            "segment": "regulars",
            "score": 7,
        }


def test_offer_assign_issues_one_coupon_with_a_pass(client, crm, runtime):
    send(client, crm, upsert())
    data = {"member": {"external_id": "crm-1"}, "offer": crm.offer_slug}
    first = send(client, crm, event("offer.assign", data))["result"]
    assert first["created"] is True
    again = send(client, crm, event("offer.assign", data))["result"]
    assert (again["created"], again["coupon_id"]) == (False, first["coupon_id"])
    with runtime.transaction() as session:
        coupon = session.scalars(select(Coupon)).one()
        pass_row = session.scalars(select(Pass).where(Pass.coupon_id == coupon.id)).one()
        assert pass_row.serial == first["pass_serial"]
        assert coupon.member_id == pass_row.member_id
    missing = post(client, crm, event("offer.assign", {**data, "offer": "nope"}))
    assert missing.status_code == 422
    assert missing.get_json()["errors"][0]["field"] == "data.offer"


def test_unknown_member_is_a_422(client, crm, runtime):
    response = post(
        client,
        crm,
        event("points.adjust", {"member": {"external_id": "ghost"}, "points": 1, "reason": "x"}),
    )
    assert response.status_code == 422
    assert response.get_json()["type"] == "/problems/unknown-member"
    assert counts(runtime)["InboundEvent"] == 0


# --- refusals write nothing ---------------------------------------------------------------


def test_unknown_event_type_is_422_and_writes_nothing(client, crm, runtime):
    before = counts(runtime)
    response = post(client, crm, event("member.delete", {"external_id": "crm-1"}))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "/problems/unknown-event-type"
    assert body["errors"] == [{"field": "type", "message": "unknown event type"}]
    assert counts(runtime) == before


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (event("purchase", {"member": {"external_id": "a"}, "receipt_id": "r"}), "data"),
        (
            event(
                "purchase",
                {"member": {"external_id": "a"}, "receipt_id": "r", "amount": 12.5},
            ),
            "data.amount",
        ),
        (event("member.upsert", {"email": "not-an-email"}), "data.email"),
        (event("member.upsert", {"external_id": "a", "birthday": "1990-02-30"}), "data.birthday"),
        (event("member.upsert", {"external_id": "a", "emial": "typo@x.test"}), "data"),
        (event("points.adjust", {"member": {"id": 1}, "points": 0, "reason": "x"}), "data.points"),
        (event("member.tag", {"member": {}}), "data"),
        ({"type": "purchase", "data": {}}, "body"),
    ],
)
def test_schema_invalid_payload_is_422_with_field_errors(client, crm, runtime, doc, field):
    send(client, crm, upsert("a", "a@example.test"))
    before = counts(runtime)
    response = post(client, crm, doc)
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["type"] == "/problems/validation-error"
    fields = [e["field"] for e in body["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert counts(runtime) == before


def test_not_json_is_422(client, crm):
    response = post(client, crm, None, body=b"{not json")
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "body"


def test_oversized_body_is_refused_before_reading(client, crm):
    response = post(client, crm, None, body=b" " * (300 * 1024))
    assert response.status_code == 413
