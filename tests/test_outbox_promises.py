"""The outbox keeps its promises with the real worker: a batch slower than its lease runs
once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select

from walletpass.jobs import registry
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.queue import enqueue
from walletpass.jobs.worker import Worker
from walletpass.runtime import Runtime

SLOW = "test.slow"


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
