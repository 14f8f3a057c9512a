"""Currencies counted in whole units (TWD, JPY): an amount with decimals is refused with
the reason, wherever it comes in (the till page, the till's API, the API's transactions,
the CRM's events, a program's rules, an offer's discount), and nothing is written."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import factories
import pytest
from sqlalchemy import func, select

from walletpass.crm.inbound import create_source
from walletpass.loyalty.models import LedgerEntry, Member, Program
from walletpass.offers.models import Offer
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.models import Store
from walletpass.tenancy.users import create_user

PASSWORD = "correct horse battery"
WHOLE = "TWD has no minor unit: 12.5 must be a whole amount"


def _ledger(runtime) -> tuple[int, list[tuple[int, int]]]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        entries = s.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        balances = [
            (m.points_balance, m.stamps_balance)
            for m in s.scalars(select(Member).order_by(Member.id))
        ]
        return entries, balances


@pytest.fixture
def taipei(runtime, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A Taipei tea shop counting in TWD: a points card, a paid membership card, a till
    key, a staff member, a CRM source."""
    with runtime.transaction() as s:
        merchant = factories.merchant(
            s, name="Tea House", currency="TWD", timezone="Asia/Taipei", language="zh-Hant"
        )
        s.info["merchant_id"] = merchant.id
        store = Store(merchant_id=merchant.id, code="main", name="Main")
        s.add(store)
        s.flush()
        points = factories.program(s, merchant, "points", rules={"amount_per_point": "30"})
        club = factories.program(
            s, merchant, "membership", rules={"paid": True, "price": "300", "validity_months": 12}
        )
        member = factories.member(s, points, language="zh-Hant")
        card = factories.member_pass(s, settings, member)
        club_member = factories.member(s, club, language="zh-Hant")
        club_card = factories.member_pass(s, settings, club_member)
        _, key = create_api_key(s, merchant_id=merchant.id, scope="till", store_id=store.id)
        _, crm_key = create_api_key(s, merchant_id=merchant.id, scope="crm")
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        source, secret = create_source(
            s, settings, merchant_id=merchant.id, name=f"crm-{merchant.id}", program_id=points.id
        )
        return {
            "merchant_id": merchant.id,
            "code": card.barcode,
            "club_code": club_card.barcode,
            "member_id": member.id,
            "club_member_id": club_member.id,
            "key": key,
            "crm_key": crm_key,
            "source": source.name,
            "secret": secret,
        }


def test_the_scan_api_refuses_decimals_and_takes_whole_dollars(client, runtime, taipei):
    headers = {"Authorization": f"Bearer {taipei['key']}"}
    before = _ledger(runtime)
    for body, field in (
        ({"action": "purchase", "amount": "12.5", "receipt_id": "r1"}, "body.amount"),
        (
            {
                "action": "purchase",
                "amount": "100",
                "receipt_id": "r1",
                "lines": [{"amount": "87.5"}, {"amount": "12.5"}],
            },
            "body.lines[0].amount",
        ),
    ):
        r = client.post("/api/v1/scans", json={"code": taipei["code"], **body}, headers=headers)
        assert r.status_code == 422, r.get_data(as_text=True)
        assert r.mimetype == "application/problem+json"
        assert "TWD has no minor unit" in r.json["detail"]
        assert r.json["errors"][0]["field"] == field
    assert _ledger(runtime) == before
    ok = client.post(
        "/api/v1/scans",
        json={"code": taipei["code"], "action": "purchase", "amount": "120", "receipt_id": "r1"},
        headers=headers,
    )
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.json["balance"]["points"] == 4
    refund = client.post(
        "/api/v1/scans",
        json={"code": taipei["code"], "action": "refund", "amount": "30.5", "receipt_id": "r1"},
        headers=headers,
    )
    assert refund.status_code == 422
    assert refund.json["detail"] == "TWD has no minor unit: 30.5 must be a whole amount"
    # "30.00" is a whole amount written with zeros (as a till may send it): taken.
    whole = client.post(
        "/api/v1/scans",
        json={"code": taipei["code"], "action": "refund", "amount": "30.00", "receipt_id": "r1"},
        headers=headers,
    )
    assert whole.status_code == 200, whole.get_data(as_text=True)
    assert whole.json["balance"]["points"] == 3


def test_the_api_transactions_refuse_decimals_by_field(client, runtime, taipei):
    path = f"/api/v1/members/{taipei['member_id']}/transactions"
    headers = {"Authorization": f"Bearer {taipei['crm_key']}"}
    before = _ledger(runtime)
    r = client.post(
        path, json={"type": "purchase", "amount": "12.5", "receipt_id": "a"}, headers=headers
    )
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert (r.json["detail"], r.json["errors"][0]["field"]) == (WHOLE, "body.amount")
    club = f"/api/v1/members/{taipei['club_member_id']}/transactions"
    r = client.post(
        club,
        json={"type": "membership_payment", "amount": "299.5", "receipt_id": "m1"},
        headers=headers,
    )
    assert r.status_code == 422, r.get_data(as_text=True)
    assert "TWD has no minor unit: 299.5" in r.json["detail"]
    assert _ledger(runtime) == before


def _till(client):  # type: ignore[no-untyped-def]
    html = client.get("/till/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/till/login",
        data={"email": "staff@example.test", "password": PASSWORD, "csrf_token": token},
    )
    assert r.status_code == 303
    page = client.get("/till/").get_data(as_text=True)
    csrf = re.search(r'(?:name="csrf_token" value|data-csrf)="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return lambda path, body: client.post(path, json=body, headers={"X-CSRF-Token": csrf})


def test_the_till_page_answers_why_in_its_json(client, runtime, taipei):
    staff = _till(client)
    before = _ledger(runtime)
    r = staff(
        "/till/api/scan",
        {"code": taipei["code"], "action": "purchase", "amount": "12.5", "receipt_id": "t1"},
    )
    assert r.status_code == 422
    assert r.json["error"] == "validation-error"
    assert r.json["detail"] == WHOLE
    # The till's own line, in the staff's language, carries the reason as written.
    assert r.json["message"].endswith(WHOLE)
    r = staff(
        "/till/api/membership-payment",
        {"code": taipei["club_code"], "amount": "300.5", "receipt_id": "t2"},
    )
    assert r.status_code == 422
    assert "TWD has no minor unit: 300.5" in r.json["detail"]
    assert _ledger(runtime) == before
    paid = staff(
        "/till/api/membership-payment",
        {"code": taipei["club_code"], "amount": "300", "receipt_id": "t2"},
    )
    assert paid.status_code == 200, paid.get_data(as_text=True)


def _crm(client, taipei, event_type: str, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    """An event signed as docs/crm.md says a CRM signs it."""
    t = int(time.time())
    doc = {"id": f"evt-{time.monotonic_ns()}", "type": event_type, "created": t, "data": data}
    raw = json.dumps(doc).encode()
    mac = hmac.new(taipei["secret"].encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return client.post(
        f"/webhooks/crm/{taipei['source']}",
        data=raw,
        headers={"Walletpass-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"},
    )


class _Admin:
    """An admin API key of a new shop."""

    def __init__(self, client, runtime, **merchant_kw: Any) -> None:  # type: ignore[no-untyped-def]
        with runtime.transaction() as s:
            merchant = factories.merchant(s, **merchant_kw)
            _, self.key = create_api_key(s, merchant_id=merchant.id, scope="admin")
        self.client = client

    def __call__(self, method: str, path: str, body: Any, expect: int) -> Any:
        r = self.client.open(
            "/api/v1" + path,
            method=method,
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert r.status_code == expect, r.get_data(as_text=True)
        if expect >= 400:
            assert r.mimetype == "application/problem+json"
        return r.json


def test_crm_events_with_decimals_are_refused_by_their_field(client, runtime, taipei):
    with runtime.transaction(taipei["merchant_id"]) as s:
        external = s.get(Member, taipei["member_id"])
        assert external is not None
        external.external_id = "crm-7"
    before = _ledger(runtime)
    member = {"external_id": "crm-7"}
    r = _crm(client, taipei, "purchase", {"member": member, "amount": "12.5", "receipt_id": "c1"})
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.mimetype == "application/problem+json"
    assert (r.json["detail"], r.json["errors"][0]["field"]) == (WHOLE, "data.amount")
    r = _crm(
        client,
        taipei,
        "purchase",
        {
            "member": member,
            "amount": "100",
            "receipt_id": "c2",
            "lines": [{"amount": "60"}, {"amount": "39.9"}],
        },
    )
    assert r.status_code == 422
    assert r.json["errors"][0]["field"] == "data.lines[1].amount"
    assert _ledger(runtime) == before
    r = _crm(client, taipei, "purchase", {"member": member, "amount": "90", "receipt_id": "c3"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _ledger(runtime)[1] != before[1]


def test_program_rules_and_offers_in_yen_hold_whole_amounts(client, runtime):
    admin = _Admin(client, runtime, currency="JPY", timezone="Asia/Tokyo")
    tiers = {
        "amount_per_point": "100",
        "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "9999.5"}],
    }
    bad = admin(
        "POST",
        "/programs",
        {"slug": "tea-tiers", "name": "Tea", "kind": "tiers", "rules": tiers},
        422,
    )
    assert bad["errors"] == [
        {
            "field": "body.rules.levels.1.min_spend",
            "message": "JPY has no minor unit: 9999.5 must be a whole amount.",
        }
    ]
    club = {"paid": True, "price": "3000.50"}
    bad = admin(
        "POST",
        "/programs",
        {"slug": "club", "name": "Club", "kind": "membership", "rules": club},
        422,
    )
    assert bad["errors"][0]["field"] == "body.rules.price"
    points = {"amount_per_point": "100", "points_to_currency": "1"}
    program = admin(
        "POST",
        "/programs",
        {"slug": "yen-points", "name": "P", "kind": "points", "rules": points},
        201,
    )
    bad = admin("PATCH", f"/programs/{program['id']}", {"rules": {"amount_per_point": "0.5"}}, 422)
    assert bad["errors"][0]["field"] == "body.rules.amount_per_point"
    off = {"slug": "yen-off", "title": "Off", "discount": {"type": "amount", "value": "50.5"}}
    bad = admin("POST", "/offers", off, 422)
    assert bad["errors"] == [
        {
            "field": "body.discount.value",
            "message": "JPY has no minor unit: 50.5 must be a whole amount",
        }
    ]
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Offer)) == 0
        assert s.scalar(select(func.count()).select_from(Program)) == 1
        assert s.get(Program, program["id"]).rules["amount_per_point"] == "100"  # type: ignore[union-attr]
    offer = admin("POST", "/offers", {**off, "discount": {"type": "amount", "value": "50"}}, 201)
    bad = admin(
        "PATCH", f"/offers/{offer['id']}", {"discount": {"type": "amount", "value": "0.99"}}, 422
    )
    assert bad["errors"][0]["field"] == "body.discount.value"
    with runtime.transaction() as s:
        assert s.get(Offer, offer["id"]).discount["value"] == "50"  # type: ignore[union-attr]
    # Euros keep their cents: the same rules are fine in a euro shop.
    euro = _Admin(client, runtime, currency="EUR")
    euro(
        "POST",
        "/programs",
        {"slug": "eu-tiers", "name": "Tea", "kind": "tiers", "rules": tiers},
        201,
    )
    euro("POST", "/offers", {**off, "slug": "eu-off"}, 201)
