"""Pacing a large change's wallet pushes (walletpass.passes.changes, walletpass.jobs.pacing).

Every push makes a phone fetch its pass, so a change to more than PACE_ABOVE passes has
its pushes spread at WALLETPASS_PUSH_RATE on one cursor shared by every process, while a
till scan's push goes at once, ahead of them, without touching that cursor.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import factories
import pytest
from sqlalchemy import event, select

from walletpass.db import utcnow
from walletpass.jobs import pacing
from walletpass.jobs.models import Job, JobStatus, PushPace
from walletpass.jobs.worker import Worker
from walletpass.loyalty import ledger
from walletpass.passes import changes
from walletpass.passes.changes import mark_changed
from walletpass.passes.refresh import program_passes
from walletpass.scan.services import ScanRequest, apply_scan

RATE = 10  # pushes a second: a slot every 100 ms
STEP = timedelta(seconds=1 / RATE)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.override(push_rate=RATE)


@pytest.fixture(autouse=True)
def _small_threshold(monkeypatch):  # type: ignore[no-untyped-def]
    # A change of 4 passes or more is "large" here (500 in production).
    monkeypatch.setattr(changes, "PACE_ABOVE", 3)


def _phones(runtime, settings, count):  # type: ignore[no-untyped-def]
    """``count`` members' cards, each on a phone of its own. Returns the program's id,
    the pass ids, the tokens (in pass order) and the first card's barcode."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        program = factories.program(s, merchant, "points")
        ids, tokens, barcode = [], [], None
        for i in range(count):
            row = factories.member_pass(s, settings, factories.member(s, program))
            token = f"{program.id:04x}{i:060x}"
            factories.on_phone(s, row, token)
            ids.append(row.id)
            tokens.append(token)
            barcode = barcode or row.barcode
        return {
            "merchant_id": merchant.id,
            "program_id": program.id,
            "ids": ids,
            "tokens": tokens,
            "barcode": barcode,
        }


def _pushes(runtime, tokens=None):  # type: ignore[no-untyped-def]
    """The pending pushes as (run_at, token, dedupe key), in run_at order."""
    with runtime.transaction() as s:
        rows = s.scalars(
            select(Job)
            .where(Job.kind == "apple.push", Job.status == JobStatus.PENDING)
            .order_by(Job.run_at, Job.id)
        ).all()
        return [
            (job.run_at, job.payload["token"], job.dedupe_key)
            for job in rows
            if tokens is None or job.payload["token"] in tokens
        ]


def _cursor(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(PushPace.next_slot_us).where(PushPace.id == 1))


@pytest.mark.parametrize("named_by", ["ids", "condition", "ids in batches"])
def test_a_large_change_spreads_its_pushes_at_the_rate(runtime, settings, monkeypatch, named_by):  # type: ignore[no-untyped-def]
    if named_by == "ids in batches":
        monkeypatch.setattr(changes, "BATCH", 2)  # each batch reserves its own slots
    shop = _phones(runtime, settings, 6)
    now = utcnow()
    with runtime.transaction() as s:
        passes = program_passes(shop["program_id"]) if named_by == "condition" else shop["ids"]
        change = changes.change_passes(s, settings, passes=passes, now=now)
    pushes = _pushes(runtime)
    # Every phone gets its push, one slot each, 1/RATE apart from now on.
    assert sorted(token for _, token, _ in pushes) == sorted(shop["tokens"])
    assert [run_at for run_at, _, _ in pushes] == [now + STEP * i for i in range(6)]
    assert {key.split(":")[0] for _, _, key in pushes} == {"apns-paced"}
    assert (change.push_rate, change.paced_pushes) == (RATE, 6)
    assert change.last_push_at == now + STEP * 5


def test_a_small_change_is_pushed_at_once(runtime, settings):  # type: ignore[no-untyped-def]
    shop = _phones(runtime, settings, 3)
    now = utcnow()
    with runtime.transaction() as s:
        change = changes.change_passes(s, settings, passes=shop["ids"], now=now)
    assert [(run_at, key.split(":")[0]) for run_at, _, key in _pushes(runtime)] == [
        (now, "apns")
    ] * 3
    assert (change.push_rate, change.last_push_at) == (None, None)
    assert _cursor(runtime) is None  # never reserved


def test_fan_outs_back_to_back_continue_the_cursor(runtime, settings):  # type: ignore[no-untyped-def]
    first = _phones(runtime, settings, 4)
    second = _phones(runtime, settings, 5)
    now = utcnow()
    # Two transactions at the same moment (as two worker processes would be): the second
    # takes the slots after the first's instead of pushing alongside it.
    for shop in (first, second):
        with runtime.transaction() as s:
            mark_changed(s, settings, passes=shop["ids"], now=now)
    one = [run_at for run_at, _, _ in _pushes(runtime, first["tokens"])]
    two = [run_at for run_at, _, _ in _pushes(runtime, second["tokens"])]
    assert one == [now + STEP * i for i in range(4)]
    assert two == [now + STEP * i for i in range(4, 9)]


def test_concurrent_reservations_never_overlap(runtime):  # type: ignore[no-untyped-def]
    now = utcnow()
    start = threading.Barrier(2)
    got: list[pacing.Slots] = []

    def reserve(count: int) -> None:
        start.wait()
        with runtime.transaction() as s:
            slots = pacing.reserve(s, count, RATE, now)
        got.append(slots)

    threads = [threading.Thread(target=reserve, args=(n,)) for n in (30, 50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = sorted(got, key=lambda slots: slots.first)
    # Whichever committed first, the other's slots start where its span ends.
    assert a.first == now
    assert b.first == a.first + STEP * a.count
    assert {a.count, b.count} == {30, 50}


def test_a_scan_is_pushed_at_once_ahead_of_a_paced_backlog(runtime, settings):  # type: ignore[no-untyped-def]
    shop = _phones(runtime, settings, 6)
    # A campaign's backlog already reaches an hour ahead.
    later = utcnow() + timedelta(hours=1)
    with runtime.transaction() as s:
        s.add(PushPace(id=1, next_slot_us=round(later.timestamp() * 1_000_000)))
    with runtime.transaction() as s:
        mark_changed(s, settings, passes=shop["ids"])
    cursor = _cursor(runtime)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        # The first card's member buys at the till: their phone is also in the backlog.
        with runtime.transaction(shop["merchant_id"]) as s:
            apply_scan(
                s,
                settings,
                ScanRequest(
                    code=shop["barcode"], action="purchase", amount=Decimal("9"), receipt_id="r1"
                ),
                ledger.Actor("staff", "1"),
            )
    finally:
        event.remove(runtime.engine, "before_cursor_execute", seen)
    assert statements  # the scan did run its statements
    assert not [sql for sql in statements if "push_pace" in sql]
    assert _cursor(runtime) == cursor
    # Its push is queued now, under its own key (not absorbed by the paced one)...
    scan_push = [p for p in _pushes(runtime) if p[2].startswith("apns:")]
    assert [token for _, token, _ in scan_push] == [shop["tokens"][0]]
    # ...and is the one the worker claims: the campaign's wait for their slots.
    claimed = Worker(runtime, name="pacing-test").claim()
    assert [(job.kind, job.payload["token"]) for job in claimed] == [
        ("apple.push", shop["tokens"][0])
    ]
    assert claimed[0].dedupe_key.startswith("apns:")
    assert len(_pushes(runtime)) == 6  # the paced ones, still pending


def test_rate_zero_pushes_a_large_change_at_once(runtime, settings):  # type: ignore[no-untyped-def]
    settings = settings.override(push_rate=0)
    shop = _phones(runtime, settings, 6)
    now = utcnow()
    with runtime.transaction() as s:
        change = changes.change_passes(s, settings, passes=shop["ids"], now=now)
    pushes = _pushes(runtime)
    assert [(run_at, key.split(":")[0]) for run_at, _, key in pushes] == [(now, "apns")] * 6
    assert change.push_rate is None
    assert _cursor(runtime) is None


def test_every_phone_still_gets_its_push(runtime, settings, apns):  # type: ignore[no-untyped-def]
    settings = settings.override(
        apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert), push_rate=50
    )
    runtime.settings = settings
    shop = _phones(runtime, settings, 8)
    with runtime.transaction() as s:
        mark_changed(s, settings, passes=shop["ids"])
        # A second change to some of them before their slot: still one push per phone.
        mark_changed(s, settings, passes=shop["ids"][:5])
    worker = Worker(runtime, name="pacing-test")
    deadline = time.monotonic() + 60
    while _pushes(runtime) and time.monotonic() < deadline:
        worker.run_until_idle()
        time.sleep(0.02)  # the next slots come due
    assert sorted(p.token for p in apns.received) == sorted(shop["tokens"])
    with runtime.transaction() as s:
        done = s.scalars(select(Job.status).where(Job.kind == "apple.push")).all()
    assert done == [JobStatus.DONE] * 8


def test_a_rolled_back_change_gives_its_slots_back(runtime, settings):  # type: ignore[no-untyped-def]
    first = _phones(runtime, settings, 4)
    second = _phones(runtime, settings, 4)
    now = utcnow()

    def fail_after_the_change() -> None:
        with runtime.transaction() as s:
            mark_changed(s, settings, passes=first["ids"], now=now)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        fail_after_the_change()
    with runtime.transaction() as s:
        mark_changed(s, settings, passes=second["ids"], now=now)
    # The reservation was rolled back with the change: the next one takes its slots.
    assert [run_at for run_at, _, _ in _pushes(runtime)] == [now + STEP * i for i in range(4)]
