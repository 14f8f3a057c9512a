"""A member's coupon on their Google loyalty card (issue 22, part 2), through the real
paths: the card saved through its /p/<serial>/google link, a coupon issued to the member,
the outbox worker, the till redeeming it, the offer ending, a store's coordinates. On
SQLite and, with WALLETPASS_TEST_DATABASE_URL, on PostgreSQL; every body the service
sends is checked against Google's discovery schema by the stand-in.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import factories
import pytest
from googlekit import google_fixture, google_pki_fixture  # noqa: F401 - fixtures, by name
from standins.google_server import GoogleStandIn, make_service_account
from walletobjects_schema import WalletObjectsSchema

from walletpass import db
from walletpass.google.models import GoogleNotification
from walletpass.loyalty.ledger import Actor
from walletpass.loyalty.models import Member
from walletpass.loyalty.purchases import record_purchase
from walletpass.offers.lifecycle import offer_saved
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import issue_coupon, redeem_coupon, void_coupon
from walletpass.passes.models import Pass

ISSUER = "3388000000012345678"
STAFF = Actor("staff", "1")
_seq = itertools.count(1)


@pytest.fixture
def settings(settings, google, tmp_path):  # type: ignore[no-untyped-def]
    account = make_service_account(tmp_path, google.token_uri)
    return settings.override(
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


class Shop:
    """A points program with one member whose card is on Google Wallet."""

    def __init__(self, runtime: Any, client: Any, settings: Any) -> None:
        self.runtime = runtime
        self.settings = settings
        with runtime.transaction() as s:
            merchant = factories.merchant(s, timezone="Asia/Taipei")
            program = factories.program(s, merchant, "points")
            member = factories.member(s, program, points_balance=10)
            card = factories.member_pass(s, settings, member)
            self.merchant_id, self.program_id = merchant.id, program.id
            self.member_id, self.card_id, self.serial = member.id, card.id, card.serial
        # The holder opens the card's save link: class and object are inserted on Google.
        assert client.get(f"/p/{self.serial}/google").status_code in (302, 303)
        with runtime.transaction() as s:
            self.card_object = str(s.get(Pass, self.card_id).google_object_id)

    def offer(self, *, days: int | None = 14, **fields: Any) -> int:
        """An offer saved as the admin and the API save one (its window jobs queued)."""
        now = db.utcnow().replace(microsecond=0)
        with self.runtime.transaction() as s:
            offer = Offer(
                merchant_id=self.merchant_id,
                program_id=self.program_id,
                slug=f"offer-{next(_seq)}",
                title="Free pastry",
                discount={"type": "percent", "value": 100},
                valid_from=fields.pop("valid_from", None),
                valid_until=now + timedelta(days=days) if days is not None else None,
                **fields,
            )
            s.add(offer)
            s.flush()
            offer_saved(s, self.settings, offer)
            return offer.id

    def issue(self, offer_id: int) -> tuple[int, int]:
        """A coupon of ``offer_id`` issued to the member: (coupon id, its pass id)."""
        with self.runtime.transaction() as s:
            coupon, coupon_pass = issue_coupon(
                s, self.settings, s.get(Offer, offer_id), member_id=self.member_id
            )
            return coupon.id, coupon_pass.id

    def offer_object(self, coupon_pass_id: int) -> str | None:
        with self.runtime.transaction() as s:
            return s.get(Pass, coupon_pass_id).google_object_id

    def purchase(self, amount: str, receipt: str) -> None:
        with self.runtime.transaction() as s:
            member = s.get(Member, self.member_id)
            record_purchase(
                s, self.settings, member, amount=Decimal(amount), receipt_id=receipt, actor=STAFF
            )


@pytest.fixture
def shop(runtime, client, settings, google) -> Shop:  # type: ignore[no-untyped-def]
    return Shop(runtime, client, settings)


@pytest.fixture
def drain(worker) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    def run() -> None:
        worker.run_until_idle()

    return run


def _card_patches(google: GoogleStandIn, shop: Shop) -> list[Any]:
    return [p for p in google.calls("PATCH", f"/loyaltyObject/{shop.card_object}")]


def test_a_coupon_issued_to_a_member_is_linked_to_their_google_card(
    shop: Shop, google: GoogleStandIn, drain: Any
) -> None:
    _coupon_id, coupon_pass = shop.issue(shop.offer())
    assert shop.offer_object(coupon_pass) is None  # nothing sent before the commit
    drain()

    offer_object = shop.offer_object(coupon_pass)
    assert offer_object is not None
    stored_offer = google.stored("offerObject", offer_object)
    assert stored_offer is not None
    assert stored_offer["state"] == "ACTIVE"
    assert google.linked_offers(shop.card_object) == [offer_object]
    # The offer object was inserted before the card linked it (Google refuses the other
    # order), and both bodies are valid against the discovery schema.
    inserted = google.calls("POST", "/offerObject")
    card_write = _card_patches(google, shop)[-1]
    assert inserted
    assert inserted[-1].status == 200
    assert google.requests.index(inserted[-1]) < google.requests.index(card_write)
    schema = WalletObjectsSchema.load()
    assert schema.validate("LoyaltyObject", card_write.body, semantic=True) == []
    assert card_write.body["linkedOfferIds"] == [offer_object]
    # Silent: a coupon is not a balance change.
    assert "notifyPreference" not in card_write.body

    # A retried or repeated sync links it once, and inserts nothing twice.
    with shop.runtime.transaction() as s:
        from walletpass.google.links import queue_card_sync

        queue_card_sync(s, shop.settings, shop.member_id)
    drain()
    assert google.linked_offers(shop.card_object) == [offer_object]
    assert len(google.calls("POST", "/offerObject")) == 1


def test_a_balance_change_patch_carries_the_link_and_notifies(
    shop: Shop, google: GoogleStandIn, drain: Any
) -> None:
    """The issue's example: a card with a linked offer and a field-update PATCH."""
    _, coupon_pass = shop.issue(shop.offer())
    drain()
    shop.purchase("25.00", "r-1")
    drain()
    patch = _card_patches(google, shop)[-1]
    assert patch.body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert patch.body["loyaltyPoints"]["balance"] == {"int": 35}
    assert patch.body["linkedOfferIds"] == [shop.offer_object(coupon_pass)]
    assert WalletObjectsSchema.load().validate("LoyaltyObject", patch.body, semantic=True) == []
    assert google.stored("loyaltyObject", shop.card_object)["loyaltyPoints"]["balance"] == {
        "int": 35
    }


def test_four_balance_changes_in_a_day_notify_three_times(
    shop: Shop, google: GoogleStandIn, drain: Any, runtime: Any
) -> None:
    for n in range(4):
        shop.purchase("10.00", f"r-{n}")
        drain()
    patches = [p for p in _card_patches(google, shop) if "loyaltyPoints" in p.body]
    assert [p.body.get("notifyPreference") for p in patches] == ["NOTIFY_ON_UPDATE"] * 3 + [None]
    assert all(p.status == 200 for p in patches)  # the 4th never even met Google's refusal
    # The change still lands: the balance on Google is the ledger's.
    with runtime.transaction() as s:
        balance = s.get(Member, shop.member_id).points_balance
    assert balance == 50
    assert google.stored("loyaltyObject", shop.card_object)["loyaltyPoints"]["balance"] == {
        "int": 50
    }
    with runtime.transaction() as s:
        assert s.query(GoogleNotification).count() == 3


def test_a_no_op_or_a_retried_write_spends_no_notification(
    shop: Shop, google: GoogleStandIn, drain: Any, runtime: Any, settings: Any
) -> None:
    from walletpass.jobs import registry
    from walletpass.jobs.models import Job
    from walletpass.jobs.registry import JobContext

    shop.purchase("10.00", "r-1")
    drain()
    sync = registry.get("google.sync").handler
    job = Job(kind="google.sync", payload={"pass_id": shop.card_id, "notify": True})
    # The same version again (a duplicate job): Google already shows this balance.
    with runtime.transaction() as s:
        sync(JobContext(settings, s, runtime.services), job)
    # A change whose write lands but whose transaction is lost (the worker died before
    # commit): the retry finds Google already showing the new balance.
    shop.purchase("10.00", "r-2")

    def lost_before_commit() -> None:
        with runtime.transaction() as s:
            sync(JobContext(settings, s, runtime.services), job)
            raise RuntimeError("worker lost before commit")

    with pytest.raises(RuntimeError, match="lost before commit"):
        lost_before_commit()
    with runtime.transaction() as s:
        sync(JobContext(settings, s, runtime.services), job)
    notifying = [p for p in _card_patches(google, shop) if p.body.get("notifyPreference")]
    assert [p.body["loyaltyPoints"]["balance"] for p in notifying] == [{"int": 20}, {"int": 30}]
    # The retry wrote nothing to the budget (the lost attempt's row went with its
    # transaction: Google's own QuotaExceeded covers that one, sync.py redoes it silently).
    with runtime.transaction() as s:
        assert s.query(GoogleNotification).count() == 1
    assert google.stored("loyaltyObject", shop.card_object)["loyaltyPoints"]["balance"] == {
        "int": 30
    }


def test_a_used_up_coupon_leaves_the_card(
    shop: Shop, google: GoogleStandIn, drain: Any, runtime: Any, settings: Any
) -> None:
    coupon_id, coupon_pass = shop.issue(shop.offer())
    _kept_id, kept_pass = shop.issue(shop.offer(days=30))
    drain()
    used, kept = shop.offer_object(coupon_pass), shop.offer_object(kept_pass)
    assert google.linked_offers(shop.card_object) == [used, kept]

    with runtime.transaction() as s:
        redeem_coupon(s, settings, coupon_id)
    drain()
    assert google.stored("offerObject", used)["state"] == "COMPLETED"
    assert google.linked_offers(shop.card_object) == [kept]
    assert google.stored("offerObject", kept)["state"] == "ACTIVE"


def test_a_voided_coupon_leaves_the_card(
    shop: Shop, google: GoogleStandIn, drain: Any, runtime: Any, settings: Any
) -> None:
    coupon_id, coupon_pass = shop.issue(shop.offer())
    drain()
    with runtime.transaction() as s:
        void_coupon(s, settings, s.get(Coupon, coupon_id))
    drain()
    assert google.stored("offerObject", shop.offer_object(coupon_pass))["state"] == "INACTIVE"
    assert google.linked_offers(shop.card_object) == []


def test_day_thirty_the_card_no_longer_shows_an_ended_offer(
    shop: Shop, google: GoogleStandIn, drain: Any, clock: Clock
) -> None:
    _, coupon_pass = shop.issue(shop.offer(days=14))
    drain()
    offer_object = shop.offer_object(coupon_pass)
    assert google.linked_offers(shop.card_object) == [offer_object]

    clock.offset = timedelta(days=30)  # the offer's end job is due: nothing else happens
    drain()
    assert google.stored("offerObject", offer_object)["state"] == "EXPIRED"
    assert google.linked_offers(shop.card_object) == []


def test_an_ended_offer_missed_by_its_job_drops_off_with_the_next_write(
    shop: Shop, google: GoogleStandIn, drain: Any, runtime: Any
) -> None:
    """The list is written whole with every card write, so a lost trigger heals."""
    offer_id = shop.offer(days=14)
    _, coupon_pass = shop.issue(offer_id)
    drain()
    with runtime.transaction() as s:
        s.get(Offer, offer_id).valid_until = db.utcnow() - timedelta(minutes=1)
    shop.purchase("10.00", "r-1")
    drain()
    assert google.linked_offers(shop.card_object) == []
    assert shop.offer_object(coupon_pass) is not None


def test_a_coupon_issued_before_the_card_was_saved_is_linked_after_the_save(
    runtime: Any, client: Any, settings: Any, google: GoogleStandIn, drain: Any
) -> None:
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        program = factories.program(s, merchant, "points")
        member = factories.member(s, program)
        card = factories.member_pass(s, settings, member)
        offer = Offer(merchant_id=merchant.id, slug="early", title="Early bird", discount={})
        s.add(offer)
        s.flush()
        _, coupon_pass = issue_coupon(s, settings, offer, member_id=member.id)
        serial, card_id, coupon_pass_id = card.serial, card.id, coupon_pass.id
    drain()
    assert google.calls() == []  # no card on Google: nothing to link to
    assert client.get(f"/p/{serial}/google").status_code in (302, 303)
    drain()
    with runtime.transaction() as s:
        card_object = s.get(Pass, card_id).google_object_id
        offer_object = s.get(Pass, coupon_pass_id).google_object_id
    assert offer_object is not None
    assert google.linked_offers(card_object) == [offer_object]
