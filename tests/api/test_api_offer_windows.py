"""Time passes and the wallets follow (issue 18, item 4): when an offer ends or is
deactivated, jobs queued at that moment void its coupon passes on Apple (voided,
expirationDate) and Google (state EXPIRED / INACTIVE), move offers-program coupons on to
the next offer, take its overlay off loyalty cards, and tell both wallets; no signed copy
of the running offer is handed out after it ended.

The clock is moved by replacing ``utcnow`` in every walletpass module that reads it.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from api_helpers import POINTS, Shop, make_shop, new_member, new_program
from sqlalchemy import select
from standins.google_server import GoogleStandIn, make_service_account
from standins.tls import make_test_pki

from walletpass import db
from walletpass.jobs.models import Job, JobStatus
from walletpass.loyalty.models import Member
from walletpass.offers.models import Coupon
from walletpass.passes.models import Pass

ISSUER = "3388000000012345678"
DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "ab" * 32


@pytest.fixture(scope="module")
def google_pki(tmp_path_factory):  # type: ignore[no-untyped-def]
    return make_test_pki(tmp_path_factory.mktemp("google-pki"))


@pytest.fixture
def google(google_pki, monkeypatch) -> Iterator[GoogleStandIn]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(google_pki.ca_cert))
    with GoogleStandIn(tls_cert=google_pki.server_cert, tls_key=google_pki.server_key) as standin:
        yield standin
    assert standin.violations == []


@pytest.fixture
def settings(settings, apns, google, tmp_path):  # type: ignore[no-untyped-def]
    account = make_service_account(tmp_path, google.token_uri)
    return settings.override(
        apns_url=apns.url,
        apns_ca_file=str(apns.pki.ca_cert),
        google_issuer_id=ISSUER,
        google_service_account_file=str(account.path),
        google_api_url=google.api_url,
        google_keys_url=google.keys_url,
    )


class Clock:
    """``walletpass.db.utcnow`` moved on by ``offset`` wherever a module imported it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta(0)
        real = db.utcnow

        def now() -> datetime:
            return real() + self.offset

        for name, module in list(sys.modules.items()):
            if name.startswith("walletpass") and getattr(module, "utcnow", None) is real:
                monkeypatch.setattr(module, "utcnow", now)


@pytest.fixture
def clock(monkeypatch, app) -> Clock:  # type: ignore[no-untyped-def]
    return Clock(monkeypatch)  # after the app: every module it loads is patched


def _offer(shop: Shop, slug: str, ends: datetime | None, **fields: Any) -> dict[str, Any]:
    body = {
        "slug": slug,
        "title": f"Offer {slug}",
        "discount": {"type": "percent", "value": 20},
        "valid_until": ends.isoformat() if ends else None,
        **fields,
    }
    return shop.admin.post("/offers", body)


def _pass_of(runtime, coupon_id: int) -> Pass:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalars(select(Pass).where(Pass.coupon_id == coupon_id)).one()


def _pass_of_member(runtime, member_id: int) -> Pass:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalars(select(Pass).where(Pass.member_id == member_id)).one()


def _pass_json(client, pass_row: Pass) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.get(
        f"/apple/v1/passes/{pass_row.pass_type_id}/{pass_row.serial}",
        headers={"Authorization": f"ApplePass {pass_row.auth_token}"},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return json.loads(z.read("pass.json"))


def _register(client, pass_row: Pass, token: str = TOKEN) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        f"/apple/v1/devices/{DEVICE}/registrations/{pass_row.pass_type_id}/{pass_row.serial}",
        json={"pushToken": token},
        headers={"Authorization": f"ApplePass {pass_row.auth_token}"},
    )
    assert r.status_code in (200, 201)


def _saved_to_google(client, runtime, pass_row: Pass) -> str:  # type: ignore[no-untyped-def]
    """The holder opened the Google save link: the object exists; its REST path."""
    assert client.get(f"/p/{pass_row.serial}/google").status_code in (302, 303)
    with runtime.transaction() as s:
        return f"/offerObject/{s.get(Pass, pass_row.id).google_object_id}"


def _fields(pass_json: dict[str, Any]) -> str:
    return json.dumps(pass_json[next(k for k in ("coupon", "storeCard") if k in pass_json)])


def test_an_offer_ends_by_itself(client, runtime, worker, apns, google, clock):
    shop = make_shop(runtime, client)
    ends = db.utcnow().replace(microsecond=0) + timedelta(hours=1)
    # A flyer coupon of an offer of no program: it expires at ``ends``.
    flyer_offer = _offer(shop, "flyer", ends)
    flyer = _pass_of(runtime, shop.crm.post("/coupons", {"offer_id": flyer_offer["id"]})["id"])
    # An offers program: its coupon of A moves on to B when A ends.
    offers = new_program(shop, "offers")
    a = _offer(shop, "a", ends, program_id=offers["id"])
    b = _offer(shop, "b", ends + timedelta(days=30), program_id=offers["id"])
    regular = new_member(shop, offers["id"])
    coupon_a = shop.crm.post("/coupons", {"offer_id": a["id"], "member_id": regular["id"]})
    rolling = _pass_of(runtime, coupon_a["id"])
    # A loyalty card with an overlay that ends at ``ends``.
    points = new_program(shop, "points", POINTS)
    _offer(shop, "overlay", ends, program_id=points["id"], overlay=True, title="Double Tuesday")
    member = new_member(shop, points["id"])
    with runtime.transaction() as s:
        card = s.scalars(
            select(Pass).where(Pass.member_id == member["id"], Pass.coupon_id.is_(None))
        ).one()

    for pass_row in (flyer, rolling, card):
        _register(client, pass_row)
    google_object = _saved_to_google(client, runtime, flyer)
    worker.run_until_idle()
    apns.received.clear()
    before = _pass_json(client, flyer)  # signed now, and kept for this version
    assert "voided" not in before
    assert before["expirationDate"] == ends.isoformat()
    assert "Double Tuesday" in _fields(_pass_json(client, card))
    assert "Offer a" in _fields(_pass_json(client, rolling))
    patches_before = len(google.calls("PATCH", google_object))

    clock.offset = timedelta(hours=1, minutes=1)
    worker.run_until_idle()

    # Apple: the coupon is void and expired, and the phone was told.
    after = _pass_json(client, flyer)
    assert after["voided"] is True
    assert after["expirationDate"] == ends.isoformat()
    assert [p.token for p in apns.received] == [TOKEN]
    # Google: the offer object was PATCHed to EXPIRED with its validity.
    (patch,) = google.calls("PATCH", google_object)[patches_before:]
    assert patch.body["state"] == "EXPIRED"
    assert patch.body["validTimeInterval"]["end"]["date"] == ends.isoformat()
    # The offers program's coupon moved on to B: a new coupon, shown as valid.
    with runtime.transaction() as s:
        moved = s.get(Pass, rolling.id)
        assert s.get(Coupon, moved.coupon_id).offer_id == b["id"]
        assert moved.version > rolling.version
    shown = _pass_json(client, rolling)
    assert "Offer b" in _fields(shown)
    assert "voided" not in shown
    # The loyalty card lost the overlay.
    assert "Double Tuesday" not in _fields(_pass_json(client, card))


def test_a_signed_pass_of_an_ended_offer_is_not_served_before_the_job(
    client, runtime, worker, clock
):
    """The job at the end may run late (a busy worker): a fetch meanwhile signs again
    rather than hand out the copy signed while the offer ran."""
    shop = make_shop(runtime, client)
    ends = db.utcnow().replace(microsecond=0) + timedelta(hours=1)
    offer = _offer(shop, "late", ends)
    flyer = _pass_of(runtime, shop.crm.post("/coupons", {"offer_id": offer["id"]})["id"])
    assert "voided" not in _pass_json(client, flyer)
    clock.offset = timedelta(hours=2)
    assert _pass_json(client, flyer)["voided"] is True
    with runtime.transaction() as s:
        assert s.get(Pass, flyer.id).version == flyer.version  # no job has run


def test_editing_the_end_twice_leaves_one_live_job(client, runtime, worker, apns, clock):
    shop = make_shop(runtime, client)
    start = db.utcnow().replace(microsecond=0)
    offer = _offer(shop, "moved", start + timedelta(hours=1))
    flyer = _pass_of(runtime, shop.crm.post("/coupons", {"offer_id": offer["id"]})["id"])
    _register(client, flyer)
    shop.admin.patch(
        f"/offers/{offer['id']}", {"valid_until": (start + timedelta(hours=3)).isoformat()}
    )
    shop.admin.patch(
        f"/offers/{offer['id']}", {"valid_until": (start + timedelta(hours=3)).isoformat()}
    )
    with runtime.transaction() as s:
        pending = s.scalars(
            select(Job.payload).where(Job.kind == "offer.window", Job.status == JobStatus.PENDING)
        ).all()
    assert sorted(p["at"] for p in pending) == sorted(
        [(start + timedelta(hours=h)).isoformat() for h in (1, 3)]
    )
    worker.run_until_idle()
    apns.received.clear()
    version = _pass_of(runtime, flyer.coupon_id).version
    # The old end passes: its job finds the offer runs on and changes nothing.
    clock.offset = timedelta(hours=2)
    worker.run_until_idle()
    assert _pass_of(runtime, flyer.coupon_id).version == version
    assert apns.received == []
    assert "voided" not in _pass_json(client, flyer)
    clock.offset = timedelta(hours=3, seconds=1)
    worker.run_until_idle()
    assert _pass_of(runtime, flyer.coupon_id).version == version + 1
    assert [p.token for p in apns.received] == [TOKEN]
    assert _pass_json(client, flyer)["voided"] is True


def test_deactivating_an_offer_voids_its_coupons_at_once(client, runtime, worker, apns, google):
    shop = make_shop(runtime, client)
    offer = _offer(shop, "gone", None)
    flyer = _pass_of(runtime, shop.crm.post("/coupons", {"offer_id": offer["id"]})["id"])
    _register(client, flyer)
    google_object = _saved_to_google(client, runtime, flyer)
    worker.run_until_idle()
    apns.received.clear()
    patches_before = len(google.calls("PATCH", google_object))
    shop.admin.delete(f"/offers/{offer['id']}")
    worker.run_until_idle()
    assert _pass_json(client, flyer)["voided"] is True
    assert [p.token for p in apns.received] == [TOKEN]
    (patch,) = google.calls("PATCH", google_object)[patches_before:]
    assert patch.body["state"] == "INACTIVE"


def test_a_reward_window_reaches_the_cards_when_it_opens_and_closes(
    client, runtime, worker, apns, clock
):
    shop = make_shop(runtime, client)
    points = new_program(shop, "points", POINTS)
    member = new_member(shop, points["id"])
    with runtime.transaction() as s:
        s.get(Member, member["id"]).points_balance = 50
        card = s.scalars(select(Pass).where(Pass.member_id == member["id"])).one()
    start = db.utcnow().replace(microsecond=0)
    shop.admin.post(
        "/rewards",
        {"program_id": points["id"], "name": "Summer smoothie", "cost_points": 20,
         "valid_from": (start + timedelta(hours=1)).isoformat(),
         "valid_until": (start + timedelta(hours=2)).isoformat()},
    )  # fmt: skip
    _register(client, card)
    worker.run_until_idle()
    apns.received.clear()
    assert "Summer smoothie" not in _fields(_pass_json(client, card))
    clock.offset = timedelta(hours=1, seconds=1)
    worker.run_until_idle()
    assert [p.token for p in apns.received] == [TOKEN]
    assert "Summer smoothie" in _fields(_pass_json(client, card))
    clock.offset = timedelta(hours=2, seconds=1)
    worker.run_until_idle()
    assert [p.token for p in apns.received] == [TOKEN, TOKEN]
    assert "Summer smoothie" not in _fields(_pass_json(client, card))


def test_an_offers_card_left_on_an_ended_offer_moves_to_the_next_one_created(
    client, runtime, worker, clock
):
    shop = make_shop(runtime, client)
    offers = new_program(shop, "offers")
    ends = db.utcnow().replace(microsecond=0) + timedelta(hours=1)
    a = _offer(shop, "only", ends, program_id=offers["id"])
    member = new_member(shop, offers["id"])
    coupon = shop.crm.post("/coupons", {"offer_id": a["id"], "member_id": member["id"]})
    rolling = _pass_of(runtime, coupon["id"])
    clock.offset = timedelta(hours=2)
    worker.run_until_idle()
    assert _pass_json(client, rolling)["voided"] is True  # nothing to move on to yet
    b = _offer(shop, "next", ends + timedelta(days=7), program_id=offers["id"])
    with runtime.transaction() as s:
        assert s.get(Coupon, s.get(Pass, rolling.id).coupon_id).offer_id == b["id"]
    shown = _pass_json(client, rolling)
    assert "voided" not in shown
    assert "Offer next" in _fields(shown)


def test_a_campaign_about_an_offer_leaves_the_cards_when_the_offer_is_withdrawn(
    client, runtime, worker, apns
):
    shop = make_shop(runtime, client)
    points = new_program(shop, "points", POINTS)
    member = new_member(shop, points["id"], marketing_consent=True)
    with runtime.transaction() as s:
        card = s.scalars(select(Pass).where(Pass.member_id == member["id"])).one()
    offer = _offer(shop, "campaigned", None, program_id=points["id"])
    campaign = shop.crm.post(
        "/campaigns",
        {"name": "Spring", "title": "Spring treat", "message": "Pastries 20% off this week",
         "program_id": points["id"], "offer_id": offer["id"]},
    )  # fmt: skip
    shop.crm.post(f"/campaigns/{campaign['id']}/launch", expect=200)
    _register(client, card)
    worker.run_until_idle()
    assert "Pastries 20% off" in _fields(_pass_json(client, card))
    apns.received.clear()
    version = _pass_of_member(runtime, member["id"]).version
    shop.admin.delete(f"/offers/{offer['id']}")
    worker.run_until_idle()
    assert _pass_of_member(runtime, member["id"]).version > version
    assert [p.token for p in apns.received] == [TOKEN]
    assert "Pastries 20% off" not in _fields(_pass_json(client, card))
