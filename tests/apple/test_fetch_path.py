"""The fetch after a push: answered from the parts kept when the version was signed.

What a phone holds must be what the card shows now: after the version changed, after
the clock ended an offer or a membership, after the configuration changed, in a process
that never built the pass. And a fetch of an unchanged, signed version is one read.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import timedelta

import factories
import pytest
from apple_helpers import set_points
from sqlalchemy import event, func, select, update

from walletpass.app import create_app
from walletpass.cards import variables as card_variables
from walletpass.db import utcnow
from walletpass.jobs.models import Job
from walletpass.loyalty.models import Member
from walletpass.offers.models import Offer
from walletpass.passes import signing, stored
from walletpass.passes.fetchlog import FetchLog, fetch_log
from walletpass.passes.models import Pass, PassEvent
from walletpass.runtime import Runtime

DEVICE = "fetch-path-device"
TOKEN = "fe" * 32


def _url(card) -> str:  # type: ignore[no-untyped-def]
    return f"/apple/v1/passes/{card['type']}/{card['serial']}"


def _auth(card):  # type: ignore[no-untyped-def]
    return {"Authorization": f"ApplePass {card['token']}"}


def _pass_json(data: bytes) -> dict:  # type: ignore[type-arg]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("pass.json"))


@pytest.fixture
def signs(monkeypatch):  # type: ignore[no-untyped-def]
    """How many signatures were made."""
    calls: list[int] = []
    original = signing.SigningIdentity.sign

    def counting(self, manifest):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, manifest)

    monkeypatch.setattr(signing.SigningIdentity, "sign", counting)
    return calls


@pytest.fixture
def statements(runtime):  # type: ignore[no-untyped-def]
    """The SQL statements run, as a list to clear and read."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    yield seen
    event.remove(runtime.engine, "before_cursor_execute", record)


def test_a_signed_version_is_answered_with_one_read_and_no_rendering(
    client, card, runtime, signs, statements, monkeypatch
):
    first = client.get(_url(card), headers=_auth(card))
    assert first.status_code == 200
    assert len(signs) == 1

    def no_rendering(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the card was rendered again")

    monkeypatch.setattr(card_variables, "pass_variables", no_rendering)
    statements.clear()
    again = client.get(_url(card), headers=_auth(card))
    assert again.status_code == 200
    assert again.data == first.data
    assert again.headers["Last-Modified"] == first.headers["Last-Modified"]
    # One SELECT of the pass; no write (the fetch is logged in a batch, later).
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert len(reads) == 1
    assert "passes" in reads[0]
    assert writes == []
    assert len(signs) == 1


def test_a_new_version_is_signed_once_and_shown(client, card, runtime, settings, signs):
    client.get(_url(card), headers=_auth(card))
    set_points(runtime, settings, card, 77)
    for _ in range(3):
        r = client.get(_url(card), headers=_auth(card))
        assert r.status_code == 200
        assert "77" in json.dumps(_pass_json(r.data))
    assert len(signs) == 2


def test_an_offer_ending_before_its_job_runs_shows_at_once(client, runtime, settings):
    """The kept parts hold until the offer's end; a fetch after it (before the job that
    bumps the pass at that moment has run) gets the ended coupon, not the kept one."""
    end = utcnow() + timedelta(hours=2)
    with runtime.transaction() as s:
        m = factories.merchant(s)
        row = factories.coupon_pass(s, settings, m, valid_until=end)
        card = {"type": row.pass_type_id, "serial": row.serial, "token": row.auth_token}
        pass_id, offer_id = row.id, s.get(Offer, _offer_of(s, row)).id
    r = client.get(_url(card), headers=_auth(card))
    assert "voided" not in _pass_json(r.data)
    with runtime.transaction() as s:
        kept = s.get(Pass, pass_id)
        assert kept.signed_until == end.replace(microsecond=end.microsecond)
    # The end comes: as if two hours passed, the offer's end and the kept parts' limit
    # are now in the past, and no job has touched the pass.
    past = utcnow() - timedelta(seconds=1)
    with runtime.transaction() as s:
        s.execute(update(Offer).where(Offer.id == offer_id).values(valid_until=past))
        s.execute(update(Pass).where(Pass.id == pass_id).values(signed_until=past))
    shown = _pass_json(client.get(_url(card), headers=_auth(card)).data)
    assert shown["voided"] is True


def _offer_of(session, pass_row):  # type: ignore[no-untyped-def]
    from walletpass.offers.models import Coupon

    return session.get(Coupon, pass_row.coupon_id).offer_id


def test_a_membership_card_is_kept_until_its_reminder_then_its_end(client, runtime, settings):
    until = utcnow() + timedelta(days=40)
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(
            s, m, "membership", rules={"paid": False, "validity_months": 12, "reminder_days": 14}
        )
        mem = factories.member(s, p, membership_valid_until=until)
        row = factories.member_pass(s, settings, mem)
        card = {"type": row.pass_type_id, "serial": row.serial, "token": row.auth_token}
        pass_id = row.id
    assert client.get(_url(card), headers=_auth(card)).status_code == 200
    with runtime.transaction() as s:
        kept_until = s.get(Pass, pass_id).signed_until
    # Nothing scheduled sooner: a day at most, so an unforeseen clock change lasts a day.
    assert kept_until is not None
    assert kept_until <= utcnow() + timedelta(days=1)
    with runtime.transaction() as s:
        s.execute(
            update(Member)
            .where(Member.id == mem.id)
            .values(membership_valid_until=utcnow() + timedelta(days=14, hours=3))
        )
        s.execute(update(Pass).where(Pass.id == pass_id).values(signed_until=None, version=5))
    client.get(_url(card), headers=_auth(card))
    with runtime.transaction() as s:
        kept_until = s.get(Pass, pass_id).signed_until
    # The reminder starts 14 days before the end: in three hours.
    assert utcnow() + timedelta(hours=2) < kept_until < utcnow() + timedelta(hours=4)


def test_a_process_that_never_built_the_pass_renders_it_once_without_signing(client, card, signs):
    client.get(_url(card), headers=_auth(card))
    stored.forget_blocks()  # a fresh gunicorn worker
    first = client.get(_url(card), headers=_auth(card))
    assert first.status_code == 200
    assert len(signs) == 1


def test_another_configuration_re_signs_what_it_would_show_otherwise(
    client, card, runtime, settings, signs
):
    client.get(_url(card), headers=_auth(card))
    moved = create_app(
        runtime=Runtime(
            settings.override(public_url="https://moved.example.test"),
            runtime.engine,
            runtime.sessions,
        ),
        start_worker=False,
    ).test_client()
    r = moved.get(_url(card), headers=_auth(card))
    assert _pass_json(r.data)["webServiceURL"] == "https://moved.example.test/apple"
    assert len(signs) == 2


def test_removing_the_pass_from_its_last_device_drops_the_kept_parts(client, card, runtime):
    reg = f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}/{card['serial']}"
    assert client.post(reg, json={"pushToken": TOKEN}, headers=_auth(card)).status_code == 201
    client.get(_url(card), headers=_auth(card))
    with runtime.transaction() as s:
        assert s.get(Pass, card["id"]).signature is not None
    assert client.delete(reg, headers=_auth(card)).status_code == 200
    with runtime.transaction() as s:
        row = s.get(Pass, card["id"])
        assert (row.signed_version, row.signature, row.signed_pass_json) == (None, None, None)
    assert client.get(_url(card), headers=_auth(card)).status_code == 200


def test_fetches_reach_pass_events_by_themselves(client, card, runtime):
    log = fetch_log(runtime)
    log.seconds = 0.05  # the thread's period; WALLETPASS_FETCH_LOG_SECONDS in production
    for _ in range(3):
        client.get(_url(card), headers=_auth(card))
    deadline = time.monotonic() + 30
    count = 0
    while time.monotonic() < deadline and count < 3:
        time.sleep(0.05)
        with runtime.transaction() as s:
            count = s.scalar(
                select(func.count()).select_from(PassEvent).where(PassEvent.kind == "fetched")
            )
    assert count == 3


def test_a_fetch_log_survives_a_failed_write_and_skips_deleted_passes(runtime, card, settings):
    log = FetchLog(runtime, seconds=60)
    with runtime.transaction() as s:
        m = factories.merchant(s)
        gone = factories.coupon_pass(s, settings, m)
        gone_id, gone_merchant = gone.id, m.id
    log.record(card["merchant_id"], card["id"], 1)
    log.record(gone_merchant, gone_id, 1)
    real = runtime.transaction
    broken = {"left": 1}

    def failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if broken["left"]:
            broken["left"] -= 1
            raise OSError("database unreachable")
        return real(*args, **kwargs)

    runtime.transaction = failing_once  # type: ignore[method-assign]
    try:
        assert log.flush() == 0  # kept for the next try
        with runtime.transaction() as s:
            s.execute(update(Job).values(attempts=0))  # unrelated write still works
            s.delete(s.get(Pass, gone_id))  # erased before the next flush
        assert log.flush() == 2
    finally:
        runtime.transaction = real  # type: ignore[method-assign]
        log.close()
    with runtime.transaction() as s:
        kept = s.scalars(select(PassEvent.pass_id).where(PassEvent.kind == "fetched")).all()
    assert kept == [card["id"]]


def test_the_push_job_signs_the_changed_passes_before_it_wakes_the_phones(
    card, runtime, settings, apns, signs
):
    """After a change, the worker signs each announced pass before its push; the phone's
    fetch then signs nothing."""
    settings = settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))
    runtime = Runtime(settings, runtime.engine, runtime.sessions)
    client = create_app(runtime=runtime, start_worker=False).test_client()
    reg = f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}/{card['serial']}"
    assert client.post(reg, json={"pushToken": TOKEN}, headers=_auth(card)).status_code == 201
    set_points(runtime, settings, card, 321)
    from walletpass.jobs.worker import Worker

    assert Worker(runtime, name="prebuild-test").run_until_idle() == 1
    assert apns.count == 1
    assert len(signs) == 1
    with runtime.transaction() as s:
        row = s.get(Pass, card["id"])
        assert row.signed_version == row.version
    r = client.get(_url(card), headers=_auth(card))
    assert "321" in json.dumps(_pass_json(r.data))
    assert len(signs) == 1
    _close_services(runtime)


def test_a_batch_reads_what_a_programs_cards_share_once(runtime, settings, statements):
    """The push job builds a program's cards in one read-only transaction: the overlay,
    the program's moments and the merchant's stores are read once for all of them, and
    in a transaction that writes, every time."""
    from walletpass.cards.build import build_bundle

    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        ids = [factories.member_pass(s, settings, factories.member(s, p)).id for _ in range(3)]

    def shared_reads() -> int:
        return sum(
            1 for sql in statements if "FROM stores" in sql or "offers.overlay" in sql.lower()
        )

    for readonly, expected in ((True, 2), (False, 6)):
        statements.clear()
        with runtime.transaction(readonly=readonly) as s:
            for pass_id in ids:
                build_bundle(s, settings, s.get(Pass, pass_id))
        assert shared_reads() == expected


def test_a_campaign_ending_ends_the_kept_parts_of_the_merchants_cards(
    client, card, runtime, settings
):
    from walletpass.campaigns.models import Campaign, CampaignStatus

    ends = utcnow() + timedelta(hours=5)
    with runtime.transaction() as s:
        s.add(
            Campaign(
                merchant_id=card["merchant_id"],
                name="Weekend",
                status=CampaignStatus.FINISHED,
                ends_at=ends,
                audience={},
                title="Weekend",
                message="Double points",
            )
        )
    client.get(_url(card), headers=_auth(card))
    with runtime.transaction() as s:
        assert s.get(Pass, card["id"]).signed_until == ends


def test_a_batch_pushes_as_it_signs_and_stops_at_a_refused_certificate(runtime, settings, apns):
    """A batch's pushes leave in chunks, each right after its passes are signed; when
    APNs refuses the certificate, the chunks after it are not sent but wait the pause."""
    from walletpass.apple import push
    from walletpass.apple.models import Device, Registration
    from walletpass.jobs.models import JobStatus
    from walletpass.jobs.worker import Worker
    from walletpass.passes.changes import mark_changed

    settings = settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))
    runtime = Runtime(settings, runtime.engine, runtime.sessions)
    count = push.SIGNED_CHUNK * 2 + 10
    tokens = [f"{i:064x}" for i in range(count)]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        ids = []
        for i, token in enumerate(tokens):
            row = factories.member_pass(s, settings, factories.member(s, p))
            device = Device(
                merchant_id=m.id,
                library_id=f"lib{i}",
                pass_type_id=row.pass_type_id,
                push_token=token,
                updated_at=utcnow(),
            )
            s.add(device)
            s.flush()
            s.add(Registration(merchant_id=m.id, device_id=device.id, pass_id=row.id))
            ids.append(row.id)
    for token in tokens:  # APNs refuses the certificate, whichever push comes first
        apns.respond(token, 403, "BadCertificate")
    with runtime.transaction() as s:
        mark_changed(s, settings, passes=ids)
    Worker(runtime, name="chunks").run_until_idle()
    try:
        sent = {p.token for p in apns.received}
        assert len(sent) == push.SIGNED_CHUNK  # the first chunk only
        with runtime.transaction() as s:
            pending = s.scalar(
                select(func.count()).select_from(Job).where(Job.status == JobStatus.PENDING)
            )
            signed = s.scalar(
                select(func.count())
                .select_from(Pass)
                .where(Pass.id.in_(ids), Pass.signed_version == Pass.version)
            )
        # Every push waits for the pause; the chunks never sent were not signed.
        assert pending == count
        assert signed == push.SIGNED_CHUNK
    finally:
        _close_services(runtime)


def _close_services(runtime: Runtime) -> None:
    """Close this test's runtime's APNs client and fetch log (its engine is the fixture's)."""
    for service in runtime.services.values():
        close = getattr(service, "close", None)
        if callable(close):
            close()
