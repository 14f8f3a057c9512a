"""enqueue(): write outbox rows in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.jobs.models import PENDING_DEDUPE_PREDICATE, Job, JobStatus


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    merchant_id: int | None,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 12,
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
    max_attempts: int = 12,
) -> None:
    """:func:`enqueue` for many ``(payload, dedupe_key)`` items in one INSERT (a campaign
    queues tens of thousands; the per-row ORM bookkeeping would cost more than the SQL)."""
    now = utcnow()
    rows = [
        {
            "merchant_id": merchant_id,
            "kind": kind,
            "payload": payload,
            "dedupe_key": dedupe_key,
            "status": JobStatus.PENDING,
            "run_at": run_at or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created_at": now,
        }
        for payload, dedupe_key in items
    ]
    if not rows:
        return
    table = Job.__table__
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    # The predicate must be literal SQL equal to the partial index's: PostgreSQL cannot
    # infer the index from a predicate with bound parameters. Rows without a dedupe key
    # are outside the index and never conflict.
    stmt = ins.on_conflict_do_nothing(
        index_elements=[table.c.dedupe_key], index_where=text(PENDING_DEDUPE_PREDICATE)
    )
    session.execute(stmt, rows)
