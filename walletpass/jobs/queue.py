"""enqueue(): write outbox rows in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.db import JsonType, UTCDateTime, utcnow
from walletpass.jobs.models import PENDING_DEDUPE_PREDICATE, Job, JobStatus

DEFAULT_MAX_ATTEMPTS = 12


def attempts_for(job: Job, settings: Settings) -> int:
    """How many attempts ``job`` gets: its kind's own number if it was queued with one
    (the CRM's webhooks), else WALLETPASS_JOB_MAX_ATTEMPTS. The worker gives up after
    them; a handler that records its own failure asks the same."""
    if job.max_attempts != DEFAULT_MAX_ATTEMPTS:
        return job.max_attempts
    return settings.job_max_attempts


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    merchant_id: int | None,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> None:
    """Add a job to the outbox, in the same transaction as the change it carries.

    With ``dedupe_key``, a job that is still pending under the same key absorbs this one
    (nothing is inserted): a burst of changes costs one job, not one per change. A job
    already running does not absorb it, so a change made during a send is sent too.
    """
    enqueue_many(
        session,
        kind,
        [(payload or {}, dedupe_key)],
        merchant_id=merchant_id,
        run_at=run_at,
        max_attempts=max_attempts,
    )


def enqueue_many(
    session: Session,
    kind: str,
    items: Iterable[tuple[dict[str, Any], str | None]],
    *,
    merchant_id: int | None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    spacing: timedelta = timedelta(0),
) -> None:
    """:func:`enqueue` for many ``(payload, dedupe_key)`` items in one INSERT (a campaign
    queues tens of thousands; the per-row ORM bookkeeping would cost more than the SQL).
    With ``spacing``, each item runs that much after the one before (paced pushes)."""
    now = utcnow()
    first = run_at or now
    rows = [
        {
            "merchant_id": merchant_id,
            "kind": kind,
            "payload": payload,
            "dedupe_key": dedupe_key,
            "status": JobStatus.PENDING,
            "run_at": first + spacing * number if spacing else first,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created_at": now,
        }
        for number, (payload, dedupe_key) in enumerate(items)
    ]
    if not rows:
        return
    session.execute(_INSERT, rows)


# Literal SQL, not ``postgresql.insert(...).on_conflict_do_nothing()``: SQLAlchemy cannot
# cache the dialects' INSERT constructs and would compile one on every call (the till
# queues jobs on every scan). The conflict target must be the partial index's predicate
# as literal SQL (PostgreSQL cannot infer the index from bound parameters); rows without
# a dedupe key are outside the index and never conflict. SQLite speaks the same upsert.
_COLUMNS = (
    "merchant_id, kind, payload, dedupe_key, status, run_at, attempts, max_attempts, created_at"
)
ON_PENDING_CONFLICT = f"ON CONFLICT (dedupe_key) WHERE {PENDING_DEDUPE_PREDICATE} DO NOTHING"
# Constants only are interpolated below; every value is a bound parameter.
_INSERT = text(
    f"INSERT INTO jobs ({_COLUMNS}) VALUES (:merchant_id, :kind, :payload, :dedupe_key, "  # noqa: S608
    f":status, :run_at, :attempts, :max_attempts, :created_at) {ON_PENDING_CONFLICT}"
).bindparams(
    bindparam("payload", type_=JsonType),
    bindparam("run_at", type_=UTCDateTime()),
    bindparam("created_at", type_=UTCDateTime()),
)


def insert_select_sql(select_sql: str) -> str:
    """``INSERT INTO jobs (...) <select_sql> ON CONFLICT ...``: jobs made by a query, with
    the same pending-dedupe rule as :func:`enqueue_many`. The SELECT yields the columns in
    this order: merchant_id, kind, payload, dedupe_key, status, run_at, attempts,
    max_attempts, created_at (SQLite wants it to have a WHERE clause)."""
    return f"INSERT INTO jobs ({_COLUMNS}) {select_sql} {ON_PENDING_CONFLICT}"
