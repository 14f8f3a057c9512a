"""A paid membership as a shop runs it: the join page shows the price and the benefits, the
card is pending until a payment is recorded (the till page, the API, a CRM event, each
retried safely), renews from its end or from the payment, says when it ends soon or has
lapsed (a live card, not an expired one), and gives nothing while pending or lapsed."""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import factories
import pytest
from sqlalchemy import select

from walletpass import db
from walletpass.crm import outbound, schemas, signing
from walletpass.crm.inbound import create_source
from walletpass.jobs.models import Job
from walletpass.loyalty.enrolment import enroll
from walletpass.loyalty.ledger import Actor
from walletpass.loyalty.memberships import renew_membership
from walletpass.loyalty.models import LedgerEntry, Member, Program, Reward
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import issue_coupon
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.users import create_user

RULES = {
    "paid": True,
    "price": "30.00",
    "validity_months": 12,
    "benefits": "10% off every visit",
    "reminder_days": 14,
}
PASSWORD = "correct horse battery"


class _Clock:
    """Every walletpass module's ``utcnow`` moved on by ``offset``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta(0)
        real = db.utcnow
        for name, module in list(sys.modules.items()):
            if name.startswith("walletpass") and getattr(module, "utcnow", None) is real:
                monkeypatch.setattr(module, "utcnow", lambda: real() + self.offset)

    def at(self, moment: datetime) -> None:
        self.offset = moment - db.utcnow() + self.offset


@pytest.fixture
def clock(monkeypatch, app) -> _Clock:  # type: ignore[no-untyped-def]
    return _Clock(monkeypatch)  # after the app, so every module it loads is patched


@pytest.fixture
def club(runtime, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A café's paid club with a member's free coffee, a member who joined, keys, staff."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There", currency="EUR")
        s.info["merchant_id"] = merchant.id
        program = factories.program(s, merchant, "membership", slug="club", rules=RULES)
        reward = Reward(
            merchant_id=merchant.id, program_id=program.id, name="Free coffee", cost_points=0
        )
        s.add(reward)
        member, pass_row, _ = enroll(s, settings, program, name="Ada", email="ada@example.test")
        _, till_key = create_api_key(s, merchant_id=merchant.id, scope="till")
        _, crm_key = create_api_key(s, merchant_id=merchant.id, scope="crm")
        create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        source, secret = create_source(s, settings, merchant_id=merchant.id, name="club-crm")
        s.flush()
        return {
            "merchant_id": merchant.id,
            "member_id": member.id,
            "pass_id": pass_row.id,
            "code": pass_row.barcode,
            "reward_id": reward.id,
            "till": till_key,
            "crm": crm_key,
            "source": source.name,
            "secret": secret,
        }


def _api(client, key: str, method: str, path: str, body: Any = None, **headers: str):  # type: ignore[no-untyped-def]
    return client.open(
        "/api/v1" + path,
        method=method,
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def _pay(client, club, expect: int = 201, **body: Any) -> Any:  # type: ignore[no-untyped-def]
    headers = body.pop("headers", {})
    r = _api(
        client,
        club["crm"],
        "POST",
        f"/members/{club['member_id']}/transactions",
        {"type": "membership_payment", "amount": "30.00", **body},
        **headers,
    )
    assert r.status_code == expect, r.get_data(as_text=True)
    return r


def _until(runtime, club) -> datetime | None:  # type: ignore[no-untyped-def]
    with runtime.transaction(club["merchant_id"]) as s:
        return s.get(Member, club["member_id"]).membership_valid_until


def _renewals(runtime, club) -> list[LedgerEntry]:  # type: ignore[no-untyped-def]
    with runtime.transaction(club["merchant_id"]) as s:
        return list(
            s.scalars(
                select(LedgerEntry).where(
                    LedgerEntry.member_id == club["member_id"], LedgerEntry.kind == "renewal"
                )
            )
        )


def _lookup(client, club) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = _api(client, club["till"], "POST", "/scans", {"code": club["code"], "action": "lookup"})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json


def _redeem_at_the_till(client, club):  # type: ignore[no-untyped-def]
    return _api(
        client,
        club["till"],
        "POST",
        "/scans",
        {"code": club["code"], "action": "redeem_reward", "reward_id": club["reward_id"]},
    )


def _pass_json(client, runtime, club) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.transaction(club["merchant_id"]) as s:
        p = s.get(Pass, club["pass_id"])
        path, token = f"/apple/v1/passes/{p.pass_type_id}/{p.serial}", p.auth_token
    r = client.get(path, headers={"Authorization": f"ApplePass {token}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return json.loads(z.read("pass.json"))


def _field(pass_json: dict[str, Any], key: str) -> dict[str, Any] | None:
    for group in pass_json["storeCard"].values():
        for found in group:
            if found["key"] == key:
                return found
    return None


def _version(runtime, club) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction(club["merchant_id"]) as s:
        return s.get(Pass, club["pass_id"]).version


def test_the_join_page_shows_the_price_and_what_the_card_gives(client, club):
    page = client.get("/join/club").get_data(as_text=True)
    terms = re.search(r'data-testid="membership-terms">(.*?)</div>', page, re.S)
    assert terms is not None
    assert "€30.00 for 12 months" in terms.group(1)
    assert "10% off every visit" in terms.group(1)


def test_a_new_member_is_pending_and_gets_nothing_until_paid(client, runtime, club):
    assert _until(runtime, club) is None
    scan = _lookup(client, club)
    assert scan["member"]["membership"]["status"] == "pending"
    assert scan["member"]["membership"]["price"] == "30.00"
    assert scan["redeemable"]["rewards"] == []
    refused = _redeem_at_the_till(client, club)
    assert refused.status_code == 409
    assert refused.json["type"].endswith("/membership-inactive")
    assert "unpaid" in refused.json["detail"]
    card = _pass_json(client, runtime, club)
    assert "Payment due (€30.00)" in _field(card, "expiry")["value"]
    assert _field(card, "valid_until") is None  # no end date until paid
    assert _field(card, "benefits")["value"] == "10% off every visit"
    landing = client.get(f"/p/{card['serialNumber']}").get_data(as_text=True)
    assert "Payment due (€30.00)" in landing

    paid = _pay(client, club, receipt_id="R-1").json
    assert paid["entries"][0]["kind"] == "renewal"
    assert paid["entries"][0]["amount"] == "30.00"
    until = _until(runtime, club)
    assert until is not None
    assert timedelta(days=364) < until - db.utcnow() < timedelta(days=367)
    scan = _lookup(client, club)
    assert scan["member"]["membership"]["status"] == "active"
    assert [r["name"] for r in scan["redeemable"]["rewards"]] == ["Free coffee"]


def test_a_payment_is_recorded_once_whichever_way_it_is_retried(client, runtime, settings, club):
    _pay(client, club, receipt_id="R-1")
    until = _until(runtime, club)
    # The API retried with the same receipt, and the same receipt sent by the CRM.
    assert _pay(client, club, receipt_id="R-1").json["replayed"] is True
    body = json.dumps(
        {
            "id": "evt-1",
            "type": "membership.payment",
            "created": 1767225600,
            "data": {"member": {"id": club["member_id"]}, "amount": "30.00", "receipt_id": "R-1"},
        }
    ).encode()
    r = client.post(
        f"/webhooks/crm/{club['source']}",
        data=body,
        headers={"Walletpass-Signature": signing.header_value(club["secret"], body)},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["result"]["replayed"] is True
    # An Idempotency-Key without a receipt, sent twice.
    headers = {"Idempotency-Key": "pay-2"}
    _pay(client, club, headers=headers)
    _pay(client, club, headers=headers)
    assert len(_renewals(runtime, club)) == 2
    assert _until(runtime, club) == until.replace(year=until.year + 1)
    # Neither a receipt nor a key: a retry could renew twice, so it is refused.
    r = _pay(client, club, expect=422)
    assert r.json["errors"][0]["field"] == "body.receipt_id"


def test_the_crm_event_activates_a_pending_card_once(client, runtime, club):
    def send(event_id: str) -> Any:
        body = json.dumps(
            {
                "id": event_id,
                "type": "membership.payment",
                "created": 1767225600,
                "data": {"member": {"email": "ada@example.test"}, "amount": "30.00"},
            }
        ).encode()
        return client.post(
            f"/webhooks/crm/{club['source']}",
            data=body,
            headers={"Walletpass-Signature": signing.header_value(club["secret"], body)},
        )

    assert send("evt-9").json["status"] == "applied"
    assert send("evt-9").json["status"] == "duplicate"
    assert len(_renewals(runtime, club)) == 1
    assert _until(runtime, club) is not None


def test_a_wrong_amount_or_currency_renews_nothing(client, runtime, club):
    r = _pay(client, club, expect=422, receipt_id="R-1", amount="3.00")
    assert "costs €30.00 for 12 months" in r.json["detail"]
    r = _pay(client, club, expect=422, receipt_id="R-2", currency="USD")
    assert r.json["errors"][0]["field"] == "currency"
    assert _renewals(runtime, club) == []
    assert _until(runtime, club) is None


def test_the_till_page_records_a_payment_once(client, runtime, club):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/till/login").text)
    assert token is not None
    client.post(
        "/till/login",
        data={"email": "staff@example.test", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    page = client.get("/till/").get_data(as_text=True)
    csrf = re.search(r'data-csrf="([^"]+)"', page)
    assert csrf is not None
    assert 'id="pay-btn"' in page
    headers = {"X-CSRF-Token": csrf.group(1)}
    lookup = client.post(
        "/till/api/scan", json={"code": club["code"], "action": "lookup"}, headers=headers
    )
    assert lookup.json["member"]["membership"]["status"] == "pending"
    body = {"code": club["code"], "amount": "30.00", "receipt_id": "pay-1"}
    first = client.post("/till/api/membership-payment", json=body, headers=headers)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json["membership"]["status"] == "active"
    again = client.post("/till/api/membership-payment", json=body, headers=headers)
    assert again.json["replayed"] is True
    assert again.json["membership"]["valid_until"] == first.json["membership"]["valid_until"]
    assert len(_renewals(runtime, club)) == 1
    wrong = client.post(
        "/till/api/membership-payment",
        json={**body, "receipt_id": "pay-2", "amount": "25.00"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert "costs €30.00" in wrong.json["detail"]


def test_renewal_before_the_end_extends_it_after_the_end_starts_from_the_payment(
    client, runtime, club, clock
):
    _pay(client, club, receipt_id="R-1")
    first_end = _until(runtime, club)
    assert first_end is not None
    clock.at(first_end - timedelta(days=10))
    _pay(client, club, receipt_id="R-2")
    second_end = _until(runtime, club)
    assert second_end == first_end.replace(year=first_end.year + 1)
    clock.at(second_end + timedelta(days=40))
    assert _lookup(client, club)["member"]["membership"]["status"] == "lapsed"
    _pay(client, club, receipt_id="R-3")
    third_end = _until(runtime, club)
    assert third_end is not None
    paid_at = second_end + timedelta(days=40)
    assert timedelta(days=364) < third_end - paid_at < timedelta(days=367)


def test_the_card_reminds_then_says_lapsed_at_the_moments_the_jobs_run(
    client, runtime, worker, club, clock
):
    _pay(client, club, receipt_id="R-1")
    until = _until(runtime, club)
    assert until is not None
    worker.run_until_idle()  # the payment's own pushes
    with runtime.transaction(club["merchant_id"]) as s:
        runs = sorted(
            job.run_at for job in s.scalars(select(Job).where(Job.kind == "membership.notice"))
        )
    assert runs == [until - timedelta(days=14), until]
    card = _pass_json(client, runtime, club)
    assert "expirationDate" not in card
    assert _field(card, "expiry") is None

    version = _version(runtime, club)
    clock.at(until - timedelta(days=14) + timedelta(seconds=1))
    worker.run_until_idle()
    assert _version(runtime, club) == version + 1  # the wallet was told
    notice = _field(_pass_json(client, runtime, club), "expiry")
    assert notice["value"].startswith("Your membership ends on ")
    assert "Renew at the counter (€30.00)" in notice["value"]
    assert notice["changeMessage"] == "%@"  # the lock-screen notice

    clock.at(until + timedelta(seconds=1))
    worker.run_until_idle()
    assert _version(runtime, club) == version + 2
    card = _pass_json(client, runtime, club)
    assert _field(card, "expiry")["value"].startswith("Lapsed on ")
    assert "expirationDate" not in card
    assert "voided" not in card
    with runtime.transaction(club["merchant_id"]) as s:
        assert s.get(Pass, club["pass_id"]).status == PassStatus.ACTIVE
    refused = _redeem_at_the_till(client, club)
    assert refused.status_code == 409
    assert "lapsed" in refused.json["detail"]


def test_a_free_membership_still_starts_at_joining(runtime, settings):
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        s.info["merchant_id"] = merchant.id
        program = factories.program(s, merchant, "membership")
        member, _, _ = enroll(s, settings, s.get(Program, program.id), name="Bo")
        assert member.membership_valid_until is not None
        assert member.membership_valid_until - db.utcnow() > timedelta(days=360)


def test_the_ledger_keeps_the_payment_in_the_merchants_currency(runtime, settings, club):
    # The ledger keeps what was paid exactly, in the merchant's currency.
    with runtime.transaction(club["merchant_id"]) as s:
        member = s.get(Member, club["member_id"])
        renew_membership(
            s, settings, member, key="membership:x", actor=Actor("staff"), amount=Decimal("30")
        )
    entry = _renewals(runtime, club)[0]
    assert entry.amount == Decimal("30.00")
    assert entry.currency == "EUR"


def test_the_openapi_document_describes_the_payment_and_its_refusal(client):
    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/members/{member_id}/transactions"]["post"]
    assert "membership payment" in op["description"]
    assert "pending" in op["description"]
    payment = doc["components"]["schemas"]["MembershipPaymentTx"]
    assert "Idempotency-Key" in payment["description"]
    assert "price" in payment["properties"]["amount"]["description"]
    problems = json.dumps(op["responses"])
    assert "membership-inactive" in problems
    standing = doc["components"]["schemas"]["MembershipOut"]["properties"]["status"]
    assert standing["enum"] == ["pending", "active", "lapsed"]


def test_the_crm_is_told_of_a_payment_taken_at_the_counter(client, runtime, settings, club):
    with runtime.transaction(club["merchant_id"]) as s:
        outbound.create_endpoint(
            s,
            settings,
            merchant_id=club["merchant_id"],
            url="https://crm.example.com/hook",
            events=["membership.renewed"],
        )
    _pay(client, club, receipt_id="R-1")
    _pay(client, club, receipt_id="R-1")  # a retry tells nothing again
    with runtime.transaction(club["merchant_id"]) as s:
        sent = [job.payload for job in s.scalars(select(Job).where(Job.kind == "event.publish"))]
    renewed = [e for e in sent if e["type"] == "membership.renewed"]
    assert len(renewed) == 1
    assert schemas.field_errors("outbound", "membership.renewed", renewed[0]) == []
    assert renewed[0]["data"]["amount"] == "30.00"
    assert renewed[0]["data"]["receipt_id"] == "R-1"
    assert renewed[0]["data"]["valid_until"] == _until(runtime, club).isoformat()


def test_a_pending_members_coupon_waits_for_the_payment(client, runtime, settings, club):  # type: ignore[no-untyped-def]
    # A coupon issued to a member of a paid club is one of the club's benefits: like its
    # rewards, it gives nothing until the membership is paid, at the till and on the API.
    with runtime.transaction(club["merchant_id"]) as s:
        offer = Offer(
            merchant_id=club["merchant_id"],
            slug="members-cake",
            title="Cake for members",
            discount={"type": "percent", "value": 50},
        )
        s.add(offer)
        s.flush()
        coupon, coupon_pass = issue_coupon(s, settings, offer, member_id=club["member_id"])
        coupon_id, coupon_code = coupon.id, coupon_pass.barcode
    scan = {"code": coupon_code, "action": "redeem_coupon"}
    refused = _api(client, club["till"], "POST", "/scans", scan)
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert refused.json["type"].endswith("membership-inactive")
    assert "unpaid" in refused.json["detail"]
    api = _api(
        client,
        club["crm"],
        "POST",
        f"/coupons/{coupon_id}/redeem",
        None,
        **{"Idempotency-Key": "c1"},
    )
    assert api.status_code == 409, api.get_data(as_text=True)
    with runtime.transaction(club["merchant_id"]) as s:
        assert s.get(Coupon, coupon_id).uses == 0
    _pay(client, club, receipt_id="pay-1")
    used = _api(client, club["till"], "POST", "/scans", scan)
    assert used.status_code == 200, used.get_data(as_text=True)
