"""The /till page: sign-in, lock-out, CSRF, and its JSON endpoints over the scan service."""

from __future__ import annotations

import re

import factories
import pytest
from sqlalchemy import select

from walletpass.loyalty.models import Member, Reward
from walletpass.scan.models import Scan
from walletpass.tenancy.models import Merchant, User
from walletpass.tenancy.users import create_user

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There")
        program = factories.program(
            s, merchant, "points", slug="beans", rules={"amount_per_point": "1"}
        )
        member = factories.member(s, program, name="Ada")
        card = factories.member_pass(s, settings, member)
        reward = Reward(
            merchant_id=merchant.id, program_id=program.id, name="Free muffin", cost_points=10
        )
        s.add(reward)
        user = create_user(
            s, merchant_id=merchant.id, email="staff@example.test", password=PASSWORD, role="staff"
        )
        other = factories.merchant(s, name="Elsewhere")
        other_program = factories.program(s, other, "points")
        other_card = factories.member_pass(s, settings, factories.member(s, other_program))
        return {
            "code": card.barcode,
            "member_id": member.id,
            "user_id": user.id,
            "reward_id": reward.id,
            "other_code": other_card.barcode,
        }


def _csrf(html: str) -> str:
    match = re.search(r'(?:name="csrf_token" value|data-csrf)="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _sign_in(client, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = _csrf(client.get("/till/login").get_data(as_text=True))
    return client.post(
        "/till/login",
        data={"email": "Staff@Example.test", "password": password, "csrf_token": token},
    )


@pytest.fixture
def staff(client, shop):  # type: ignore[no-untyped-def]
    assert _sign_in(client).status_code == 303
    token = _csrf(client.get("/till/").get_data(as_text=True))

    def call(path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
        return client.post(path, json=body or {}, headers={"X-CSRF-Token": token})

    return call


def test_anonymous_visitors_are_sent_to_sign_in(client, shop):
    r = client.get("/till/")
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/till/login?next=")


def test_wrong_password_shows_an_error(client, shop):
    r = _sign_in(client, "wrong password!")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Wrong email or password." in html
    assert 'value="Staff@Example.test"' in html  # the email is kept


def test_five_failures_lock_the_account(client, runtime, shop):
    for _ in range(5):
        assert "Wrong email or password." in _sign_in(client, "nope nope nope").get_data(
            as_text=True
        )
    # Now even the right password is refused until the lock runs out.
    html = _sign_in(client).get_data(as_text=True)
    assert "Too many failed attempts" in html
    with runtime.transaction() as s:
        assert s.get(User, shop["user_id"]).locked_until is not None


def test_staff_can_sign_in_and_out(client, shop):
    r = _sign_in(client)
    assert r.status_code == 303
    assert r.headers["Location"] == "/till/"
    html = client.get("/till/").get_data(as_text=True)
    assert "Bean There" in html
    assert 'id="code"' in html
    r = client.post("/till/logout", data={"csrf_token": _csrf(html)})
    assert r.status_code == 303
    assert client.get("/till/").status_code == 302


def test_sign_in_only_redirects_back_into_the_till(client, shop):
    token = _csrf(client.get("/till/login").get_data(as_text=True))
    r = client.post(
        "/till/login?next=https://evil.example/till",
        data={"email": "staff@example.test", "password": PASSWORD, "csrf_token": token},
    )
    assert r.headers["Location"] == "/till/"


def test_posts_without_csrf_are_refused(client, shop):
    assert (
        client.post(
            "/till/login", data={"email": "staff@example.test", "password": PASSWORD}
        ).status_code
        == 400
    )
    assert _sign_in(client).status_code == 303
    r = client.post("/till/api/scan", json={"code": shop["code"], "action": "lookup"})
    assert r.status_code == 400
    assert r.json["error"] == "bad-request"
    r = client.post(
        "/till/api/scan",
        json={"code": shop["code"], "action": "lookup"},
        headers={"X-CSRF-Token": "forged"},
    )
    assert r.status_code == 400


def test_json_endpoints_refuse_anonymous_users(client, shop):
    # A CSRF token alone (from the sign-in page) is not a signed-in session.
    token = _csrf(client.get("/till/login").get_data(as_text=True))
    for path in ("/till/api/scan", "/till/api/scans/1/undo"):
        r = client.post(
            path, json={"code": shop["code"], "action": "lookup"}, headers={"X-CSRF-Token": token}
        )
        assert r.status_code == 401, path
        assert r.json["error"] == "unauthenticated"


def test_lookup_shows_the_member(staff, shop):
    r = staff("/till/api/scan", {"code": shop["code"].lower(), "action": "lookup"})
    assert r.status_code == 200, r.json
    assert r.json["member"]["name"] == "Ada"
    assert r.json["balance"] == {"points": 0, "stamps": None}


def test_purchase_is_recorded_once_per_receipt_and_can_be_undone(staff, runtime, shop):
    body = {
        "code": shop["code"],
        "action": "purchase",
        "amount": "12.50",
        "receipt_id": "till-abc123",
    }
    first = staff("/till/api/scan", body)
    assert first.status_code == 200, first.json
    assert first.json["points_delta"] == 12
    assert first.json["balance"]["points"] == 12
    assert first.json["redeemable"]["rewards"][0]["name"] == "Free muffin"
    again = staff("/till/api/scan", body)  # a double tap sends the same receipt id
    assert again.json["replayed"] is True
    assert again.json["balance"]["points"] == 12
    with runtime.transaction() as s:
        scan = s.get(Scan, first.json["scan_id"])
        assert scan.user_id == shop["user_id"]
    undo = staff(f"/till/api/scans/{first.json['scan_id']}/undo")
    assert undo.status_code == 200, undo.json
    assert undo.json["balance"] == {"points": 0, "stamps": None}
    with runtime.transaction() as s:
        assert s.get(Member, shop["member_id"]).points_balance == 0


def test_redeem_a_reward(staff, shop):
    staff(
        "/till/api/scan",
        {"code": shop["code"], "action": "purchase", "amount": "20", "receipt_id": "r-1"},
    )
    r = staff(
        "/till/api/scan",
        {
            "code": shop["code"],
            "action": "redeem_reward",
            "reward_id": shop["reward_id"],
            "receipt_id": "rw-1",
        },
    )
    assert r.status_code == 200, r.json
    assert r.json["balance"]["points"] == 10


def test_domain_errors_come_back_as_json_with_their_detail(staff, runtime, shop):
    r = staff(
        "/till/api/scan",
        {
            "code": shop["code"],
            "action": "redeem_reward",
            "reward_id": shop["reward_id"],
            "receipt_id": "rw-2",
        },
    )
    assert r.status_code == 409
    assert r.json["error"] == "insufficient-points"
    assert r.json["detail"]
    # Another merchant's card is unknown here, exactly like a made-up code.
    r = staff("/till/api/scan", {"code": shop["other_code"], "action": "lookup"})
    assert (r.status_code, r.json["error"]) == (404, "unknown-code")
    r = staff(
        "/till/api/scan",
        {"code": shop["code"], "action": "purchase", "amount": "-1", "receipt_id": "x"},
    )
    assert (r.status_code, r.json["error"]) == (422, "validation-error")
    # Refused scans are logged for the staff anomaly report.
    with runtime.transaction() as s:
        failed = s.scalars(select(Scan.error_type).where(Scan.result == "error")).all()
        assert "insufficient-points" in failed
        assert "unknown-code" in failed


def test_undo_of_an_unknown_scan_is_404(staff, shop):
    r = staff("/till/api/scans/999999/undo")
    assert (r.status_code, r.json["error"]) == (404, "not-found")


def test_partial_refunds_keep_their_refund_ids_as_in_the_api(staff, shop):
    # The till page builds its scan request as POST /api/v1/scans does
    # (walletpass.scan.requests), so each refund_id is a refund of its own.
    purchase = {"code": shop["code"], "action": "purchase", "amount": "20", "receipt_id": "r-9"}
    assert staff("/till/api/scan", purchase).json["balance"]["points"] == 20
    refund = {"code": shop["code"], "action": "refund", "amount": "5", "receipt_id": "r-9"}
    first = staff("/till/api/scan", {**refund, "refund_id": "a"})
    assert first.status_code == 200, first.json
    second = staff("/till/api/scan", {**refund, "refund_id": "b"})
    assert (second.json["replayed"], second.json["balance"]["points"]) == (False, 10)
    undo = staff(f"/till/api/scans/{second.json['scan_id']}/undo")
    assert undo.json["undone_at"].endswith("+00:00"), undo.json
    assert undo.json["balance"]["points"] == 15


def test_a_full_stamp_card_is_redeemed_at_the_till_page(staff, runtime, settings, shop):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        program = factories.program(
            s,
            s.get(Merchant, s.get(Member, shop["member_id"]).merchant_id),
            "stamps",
            rules={"goal": 3, "reward_name": "Free sandwich"},
        )
        code = factories.member_pass(s, settings, factories.member(s, program)).barcode
    r = staff("/till/api/scan", {"code": code, "action": "stamp", "stamps": 4})
    assert r.status_code == 200, r.json
    assert r.json["rewards_reached"] == ["Free sandwich"]
    [sandwich] = r.json["redeemable"]["rewards"]
    assert (sandwich["name"], sandwich["cost"]) == ("Free sandwich", 3)
    r = staff(
        "/till/api/scan",
        {"code": code, "action": "redeem_reward", "reward_id": sandwich["id"], "receipt_id": "x"},
    )
    assert r.status_code == 200, r.json
    assert r.json["balance"]["stamps"] == 1  # the fourth stamp starts the next card
    assert r.json["redeemable"]["rewards"] == []
