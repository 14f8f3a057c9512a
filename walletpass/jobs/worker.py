"""The outbox worker: claim due jobs, run their handlers, record the outcome.

Claiming is a short transaction of its own: due rows (or rows whose lease ran out, i.e.
a worker died holding them) are locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
marked running under this worker's name with a lease, and committed. N workers on N
machines therefore never run one job at the same time. Each handler then runs in its
own transaction together with the update of its job row, so "done" is recorded exactly
when the handler's own writes are.

While a claimed batch runs, a lease keeper renews the lease of its jobs that are still
running (every third of the lease), so a batch slower than the lease is not reclaimed
and run a second time by another worker; only a worker that died stops renewing.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import traceback
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.jobs import registry
from walletpass.jobs.backoff import backoff
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.queue import attempts_for
from walletpass.jobs.registry import JobContext, PermanentFailure, RetryLater
from walletpass.runtime import Runtime
from walletpass.startup import Readiness

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 3600.0
# The longest pause between two rounds of a worker loop that keeps failing.
LOOP_BACKOFF_CAP_S = 30.0
# The longest pause between two tries of a job retried by time (pushes): once APNs is back,
# the pushes held up by its outage go out within a quarter of an hour.
TIMED_BACKOFF_CAP_S = 900.0


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: about 2 s, 4 s, 8 s ... capped at an hour.

    The jitter (50-100 % of the step) spreads out retries of jobs that failed together
    (an APNs outage), so they don't come back as one wave.
    """
    return backoff(attempts, first_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S, min_share=0.5, rng=rng)


def timed_backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """The schedule of a job retried by time: about 2 s, 4 s, 8 s ... capped at 15 min."""
    return backoff(
        attempts, first_s=BACKOFF_BASE_S, cap_s=TIMED_BACKOFF_CAP_S, min_share=0.5, rng=rng
    )


class _LeaseKeeper:
    """Renews the lease of a claimed batch's still-running jobs while the batch runs.

    A thread of its own with its own transactions: a handler may spend longer than the
    lease in one call (a slow APNs, a big campaign fan-out). Jobs already recorded are no
    longer running under this worker's name and drop out of the renewal by themselves.
    """

    def __init__(self, runtime: Runtime, name: str, job_ids: list[int]) -> None:
        self.runtime = runtime
        self.name = name
        self.job_ids = job_ids
        self.lease_s = runtime.settings.job_lease_seconds
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _LeaseKeeper:
        if self.lease_s > 0:
            self.thread = threading.Thread(
                target=self._renew_until_stopped, name="walletpass-lease", daemon=True
            )
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def _renew_until_stopped(self) -> None:
        # A third of the lease: two renewals may fail (a busy database) before it runs out.
        while not self.stop.wait(self.lease_s / 3):
            try:
                with self.runtime.transaction() as session:
                    session.execute(
                        update(Job)
                        .where(
                            Job.id.in_(self.job_ids),
                            Job.locked_by == self.name,
                            Job.status == JobStatus.RUNNING,
                        )
                        .values(locked_until=utcnow() + timedelta(seconds=self.lease_s))
                        .execution_options(synchronize_session=False)
                    )
            except Exception:
                log.warning(
                    "could not renew the lease of %d jobs", len(self.job_ids), exc_info=True
                )


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str | None = None,
        claim_size: int = 500,
        kinds: Iterable[str] | None = None,
    ) -> None:
        self.runtime = runtime
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self.claim_size = claim_size
        self.kinds = set(kinds) if kinds else None
        if not registry.kinds():
            # Without handlers every job would be kept as dead ("no handler"): refuse.
            raise RuntimeError(
                "no job handlers are registered: call walletpass.wiring.load_handlers() "
                "before making a Worker"
            )

    def claim(self) -> list[Job]:
        settings = self.runtime.settings
        now = utcnow()
        with self.runtime.transaction() as session:
            query = (
                select(Job)
                .where(
                    or_(
                        (Job.status == JobStatus.PENDING) & (Job.run_at <= now),
                        (Job.status == JobStatus.RUNNING) & (Job.locked_until < now),
                    )
                )
                .order_by(Job.run_at, Job.id)
                .limit(self.claim_size)
            )
            if self.kinds:
                query = query.where(Job.kind.in_(self.kinds))
            # SQLite renders no FOR UPDATE: its one writer at a time claims alone.
            query = query.with_for_update(skip_locked=True)
            jobs = list(session.scalars(query))
            if not jobs:
                return []
            lease = now + timedelta(seconds=settings.job_lease_seconds)
            session.execute(
                update(Job)
                .where(Job.id.in_([j.id for j in jobs]))
                .values(
                    status=JobStatus.RUNNING,
                    locked_by=self.name,
                    locked_until=lease,
                    attempts=Job.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            for job in jobs:
                job.attempts += 1
                job.status = JobStatus.RUNNING
                job.locked_by = self.name
            session.expunge_all()
        return jobs

    def run_once(self) -> int:
        """Claim and run one batch of due jobs. Returns how many were handled."""
        jobs = self.claim()
        if not jobs:
            return 0
        with _LeaseKeeper(self.runtime, self.name, [job.id for job in jobs]):
            self._run_claimed(jobs)
        return len(jobs)

    def _run_claimed(self, jobs: list[Job]) -> None:
        groups: dict[tuple[str, int | None], list[Job]] = defaultdict(list)
        for job in jobs:
            groups[(job.kind, job.merchant_id)].append(job)
        for (kind_name, merchant_id), group in groups.items():
            kind = registry.get(kind_name)
            if kind is None:
                self._finish_all(
                    None, group, PermanentFailure(f"no handler for job kind {kind_name!r}")
                )
                continue
            if kind.batch_handler is not None:
                for start in range(0, len(group), kind.batch_size):
                    self._run_batch(kind, merchant_id, group[start : start + kind.batch_size])
            else:
                for job in group:
                    self._run_single(kind, merchant_id, job)

    def run_until_idle(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    def schedule_periodic(self) -> None:
        """Queue the domains' periodic work if none is pending (any worker may do it)."""
        with self.runtime.transaction() as session:
            for schedule in registry.periodic_work():
                schedule(session)

    def run_forever(
        self,
        stop: threading.Event,
        idle_sleep: float = 0.5,
        *,
        readiness: Readiness | None = None,
    ) -> None:
        """Run until ``stop``; with ``readiness``, wait first until the database is ready."""
        if readiness is not None and not readiness.wait(stop):
            return
        log.info(
            "worker %s started: runs the outbox's %s jobs (wallet pushes, Google updates, "
            "webhooks, campaigns) and queues the hourly loyalty sweep (points expiry, "
            "birthday bonuses, tier reviews); looks for due jobs every %.1f s when idle",
            self.name,
            ", ".join(sorted(self.kinds or registry.kinds())),
            idle_sleep,
        )
        try:
            self.schedule_periodic()
        except Exception:
            log.exception("could not schedule the periodic sweeps")
        failures = 0
        last_error = ""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception as exc:
                # A database that went away fails every round the same way: the traceback
                # once, then one line per retry, backing off to LOOP_BACKOFF_CAP_S.
                failures += 1
                # The first line only: SQLAlchemy's message goes on with the statement's
                # parameters, which carry the time and so differ every round.
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if error != last_error:
                    log.exception("worker loop error; retrying")
                    last_error = error
                else:
                    log.error("worker loop error again (%d in a row): %s", failures, error)
                stop.wait(min(idle_sleep * 2 ** min(failures, 16), LOOP_BACKOFF_CAP_S))
                continue
            if failures:
                log.info("worker loop recovered after %d errors", failures)
                failures, last_error = 0, ""
            if handled == 0:
                stop.wait(idle_sleep)
        log.info("worker %s stopped", self.name)

    def _context(self, session: Session) -> JobContext:
        return JobContext(self.runtime.settings, session, self.runtime.services, self.runtime)

    def _run_single(self, kind: registry.Kind, merchant_id: int | None, job: Job) -> None:
        assert kind.handler is not None
        try:
            with self.runtime.transaction(merchant_id) as session:
                context = self._context(session)
                kind.handler(context, job)
                for hook in registry.done_hooks(kind.name):
                    hook(context, job)
                self._record(session, kind, job, None)
        except Exception as exc:  # the handler's writes are rolled back; record why
            self._finish_all(kind, [job], exc)

    def _run_batch(self, kind: registry.Kind, merchant_id: int | None, jobs: list[Job]) -> None:
        assert kind.batch_handler is not None
        try:
            with self.runtime.transaction(merchant_id) as session:
                outcomes = kind.batch_handler(self._context(session), jobs)
                done = [job.id for job in jobs if outcomes.get(job.id) is None]
                # One statement for the (usual) successes; failures one by one.
                for start in range(0, len(done), 500):
                    session.execute(
                        update(Job)
                        .where(
                            Job.id.in_(done[start : start + 500]),
                            Job.locked_by == self.name,
                            Job.status == JobStatus.RUNNING,
                        )
                        .values(status=JobStatus.DONE, finished_at=utcnow(), locked_until=None)
                        .execution_options(synchronize_session=False)
                    )
                for job in jobs:
                    outcome = outcomes.get(job.id)
                    if outcome is not None:
                        self._record(session, kind, job, outcome)
        except Exception as exc:
            self._finish_all(kind, jobs, exc)

    def _finish_all(self, kind: registry.Kind | None, jobs: list[Job], exc: Exception) -> None:
        if not isinstance(exc, RetryLater | PermanentFailure):
            log.error("job handler crashed: %s", "".join(traceback.format_exception(exc)))
        with self.runtime.transaction() as session:
            for job in jobs:
                self._record(session, kind, job, exc)

    def _record(
        self, session: Session, kind: registry.Kind | None, job: Job, outcome: Exception | None
    ) -> None:
        now = utcnow()
        settings = self.runtime.settings
        # A job retried by time gives up at its deadline, whatever its attempts.
        deadline = (
            job.created_at + timedelta(hours=settings.job_retry_hours)
            if kind is not None and kind.retry_by_time
            else None
        )
        mine = (Job.id == job.id) & (Job.locked_by == self.name) & (Job.status == JobStatus.RUNNING)
        if outcome is None:
            values = {"status": JobStatus.DONE, "finished_at": now, "locked_until": None}
        elif isinstance(outcome, PermanentFailure) or (
            now >= deadline if deadline is not None else job.attempts >= attempts_for(job, settings)
        ):
            values = {
                "status": JobStatus.DEAD,
                "finished_at": now,
                "locked_until": None,
                "last_error": _describe(outcome),
            }
        else:
            delay = outcome.delay if isinstance(outcome, RetryLater) and outcome.delay else None
            run_at = now + timedelta(seconds=delay or backoff_delay(job.attempts))
            if deadline is not None:
                run_at = now + timedelta(seconds=delay or timed_backoff_delay(job.attempts))
                # The last try is at the deadline, not up to a step after it.
                run_at = min(run_at, deadline)
            values = {
                "status": JobStatus.PENDING,
                "run_at": run_at,
                "locked_by": None,
                "locked_until": None,
                "last_error": _describe(outcome),
            }
            if job.dedupe_key and _pending_twin_exists(session, job):
                # A newer identical job is already queued and will do this work.
                values = {
                    "status": JobStatus.DONE,
                    "finished_at": now,
                    "locked_until": None,
                    "last_error": "superseded by a newer pending job: " + _describe(outcome),
                }
        session.execute(
            update(Job).where(mine).values(**values).execution_options(synchronize_session=False)
        )


def _pending_twin_exists(session: Session, job: Job) -> bool:
    return (
        session.scalar(
            select(Job.id).where(
                Job.dedupe_key == job.dedupe_key,
                Job.status == JobStatus.PENDING,
                Job.id != job.id,
            )
        )
        is not None
    )


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


class EmbeddedWorker:
    """The embedded default: one worker thread inside the web process (SQLite)."""

    def __init__(self, runtime: Runtime, readiness: Readiness | None = None) -> None:
        self.worker = Worker(runtime, name=f"embedded:{os.getpid()}")
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.worker.run_forever,
            args=(self.stop_event,),
            kwargs={"readiness": readiness},
            name="walletpass-worker",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
