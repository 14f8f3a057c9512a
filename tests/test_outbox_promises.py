"""The outbox keeps its promises with the real worker: a batch slower than its lease runs
once, pushes outlast a long APNs outage, and done jobs are pruned after the retention."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from walletpass.db import utcnow
from walletpass.jobs import registry
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.queue import enqueue
from walletpass.jobs.worker import TIMED_BACKOFF_CAP_S, Worker
from walletpass.runtime import Runtime

SLOW = "test.slow"
TOKEN = "fedcba9876543210" * 4


@pytest.fixture
def slow_runs() -> Counter[int]:
    """A job kind whose handler sleeps ``payload['seconds']`` and counts its runs."""
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    def slow(ctx: registry.JobContext, job: Job) -> None:
        time.sleep(job.payload["seconds"])
        with lock:
            runs[job.id] += 1

    registry.handler(SLOW)(slow)
    yield runs
    registry._KINDS.pop(SLOW, None)


def _run_against_a_second_worker(settings, seconds: list[float]) -> list[int]:  # type: ignore[no-untyped-def]
    """Worker A claims every job; worker B keeps claiming while A runs them."""
    leased = settings.override(job_lease_seconds=1)
    runtimes = [Runtime.create(leased) for _ in range(2)]
    try:
        with runtimes[0].transaction() as s:
            for i, secs in enumerate(seconds):
                enqueue(s, SLOW, {"seconds": secs, "i": i}, merchant_id=None)
        with runtimes[0].transaction() as s:
            ids = list(s.scalars(select(Job.id).where(Job.kind == SLOW).order_by(Job.id)))
        a = Worker(runtimes[0], name="a", kinds=[SLOW])
        b = Worker(runtimes[1], name="b", kinds=[SLOW])
        claimed = threading.Event()
        original_claim = a.claim

        def claim_then_signal() -> list[Job]:
            jobs = original_claim()
            claimed.set()
            return jobs

        a.claim = claim_then_signal  # type: ignore[method-assign]
        thread = threading.Thread(target=a.run_once)
        thread.start()
        assert claimed.wait(10)
        while thread.is_alive():
            b.run_once()
            time.sleep(0.05)
        thread.join()
        b.run_until_idle()
        return ids
    finally:
        for rt in runtimes:
            rt.close()


def test_slow_batch_outliving_its_lease_runs_each_job_once(runtime, settings, slow_runs):
    # Six jobs of 0.4 s claimed together: 2.4 s of work under a 1 s lease.
    ids = _run_against_a_second_worker(settings, [0.4] * 6)
    assert slow_runs == Counter(dict.fromkeys(ids, 1))
    with runtime.transaction() as s:
        assert set(s.scalars(select(Job.status).where(Job.kind == SLOW))) == {JobStatus.DONE}


def test_one_job_slower_than_its_lease_runs_once(runtime, settings, slow_runs):
    ids = _run_against_a_second_worker(settings, [2.2])
    assert slow_runs == Counter({ids[0]: 1})


@pytest.fixture
def apns_settings(settings, apns):  # type: ignore[no-untyped-def]
    return settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))


@pytest.fixture
def push_runtime(runtime, apns_settings):  # type: ignore[no-untyped-def]
    # Asks for ``runtime`` for its teardown, which empties the tables after the test.
    rt = Runtime.create(apns_settings)
    yield rt
    rt.close()


def _queue_push(rt: Runtime, settings) -> int:  # type: ignore[no-untyped-def]
    with rt.transaction() as s:
        enqueue(
            s,
            "apple.push",
            {"pass_type_id": settings.pass_type_id, "token": TOKEN},
            merchant_id=None,
            dedupe_key=f"push:{TOKEN}",
        )
    with rt.transaction() as s:
        return s.scalars(select(Job.id)).one()


def _job(rt: Runtime, job_id: int) -> Job:
    with rt.transaction() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        return job


def test_push_is_retried_through_a_long_outage_then_dead_after_the_budget(
    push_runtime, apns_settings, apns
):
    apns.respond(TOKEN, 503, "ServiceUnavailable")  # for ever
    worker = Worker(push_runtime, name="w")
    job_id = _queue_push(push_runtime, apns_settings)
    # Twelve attempts are spent within about an hour; the outage lasts longer.
    for attempt in range(1, 16):
        before = utcnow()
        assert worker.run_until_idle() == 1
        job = _job(push_runtime, job_id)
        assert (job.status, job.attempts) == (JobStatus.PENDING, attempt)
        # Capped backoff: the next try is never more than a quarter of an hour away.
        assert job.run_at - before <= timedelta(seconds=TIMED_BACKOFF_CAP_S)
        with push_runtime.transaction() as s:
            s.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    # Almost 24 hours into the outage: the last try is due at the deadline, not after.
    queued = utcnow() - timedelta(hours=24) + timedelta(seconds=30)
    with push_runtime.transaction() as s:
        s.execute(update(Job).where(Job.id == job_id).values(created_at=queued))
    worker.run_until_idle()
    job = _job(push_runtime, job_id)
    assert job.status == JobStatus.PENDING
    assert job.run_at <= queued + timedelta(hours=24)
    # Past the budget the failure is final.
    with push_runtime.transaction() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=queued - timedelta(minutes=1), run_at=utcnow())
        )
    worker.run_until_idle()
    job = _job(push_runtime, job_id)
    assert job.status == JobStatus.DEAD
    assert "503" in (job.last_error or "")
    assert apns.count == 17


def test_push_that_gets_through_after_the_outage_is_done(push_runtime, apns_settings, apns):
    apns.respond(TOKEN, 503, "ServiceUnavailable", times=14)
    worker = Worker(push_runtime, name="w")
    job_id = _queue_push(push_runtime, apns_settings)
    for _ in range(15):
        worker.run_until_idle()
        with push_runtime.transaction() as s:
            s.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    assert _job(push_runtime, job_id).status == JobStatus.DONE
    assert [p.token for p in apns.received] == [TOKEN] * 15


def test_done_jobs_older_than_the_retention_are_pruned(runtime, settings, worker):
    now = utcnow()
    rows = {
        "old done": (JobStatus.DONE, now - timedelta(days=8)),
        "recent done": (JobStatus.DONE, now - timedelta(days=6)),
        "old dead": (JobStatus.DEAD, now - timedelta(days=30)),
        "pending": (JobStatus.PENDING, None),
    }
    with runtime.transaction() as s:
        for name, (status, finished) in rows.items():
            s.add(
                Job(
                    kind="test.kept",
                    payload={"name": name},
                    status=status,
                    finished_at=finished,
                    run_at=now + timedelta(days=1),
                )
            )
    assert settings.job_retention_days == 7
    worker.schedule_periodic()
    worker.run_until_idle()
    with runtime.transaction() as s:
        left = sorted(
            j.payload["name"] for j in s.scalars(select(Job).where(Job.kind == "test.kept"))
        )
        # The prune queued its next round for an hour later.
        next_prune = s.scalars(
            select(Job).where(Job.kind == "jobs.prune", Job.status == JobStatus.PENDING)
        ).one()
    assert left == ["old dead", "pending", "recent done"]
    assert timedelta(minutes=59) < next_prune.run_at - now < timedelta(minutes=61)


def test_failing_jobs_get_the_configured_number_of_attempts(settings):  # type: ignore[no-untyped-def]
    # WALLETPASS_JOB_MAX_ATTEMPTS is what a job queued with the default gets; a kind
    # queued with its own number (the CRM's webhooks) keeps it.
    failing = "test.failing"
    tries: Counter[int] = Counter()

    def fail(ctx: registry.JobContext, job: Job) -> None:
        tries[job.id] += 1
        raise registry.RetryLater("not yet", delay=0.001)

    registry.handler(failing)(fail)
    rt = Runtime.create(settings.override(job_max_attempts=3))
    try:
        with rt.transaction() as s:
            enqueue(s, failing, {}, merchant_id=None)
            enqueue(s, failing, {}, merchant_id=None, max_attempts=5)
        with rt.transaction() as s:
            default, own = s.scalars(select(Job.id).where(Job.kind == failing).order_by(Job.id))
        worker = Worker(rt, name="w", kinds=[failing])
        for _ in range(12):
            with rt.transaction() as s:
                s.execute(update(Job).where(Job.kind == failing).values(run_at=utcnow()))
            worker.run_until_idle()
        assert (tries[default], _job(rt, default).status) == (3, JobStatus.DEAD)
        assert (tries[own], _job(rt, own).status) == (5, JobStatus.DEAD)
    finally:
        registry._KINDS.pop(failing, None)
        rt.close()
