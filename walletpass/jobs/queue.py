"""enqueue(): write an outbox row in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
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
    values = {
        "merchant_id": merchant_id,
        "kind": kind,
        "payload": payload or {},
        "dedupe_key": dedupe_key,
        "status": JobStatus.PENDING,
        "run_at": run_at or utcnow(),
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": utcnow(),
    }
    if dedupe_key is None:
        session.execute(insert(Job).values(**values))
        return
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(Job) if dialect == "postgresql" else sqlite.insert(Job)
    # The predicate must be literal SQL equal to the partial index's: PostgreSQL cannot
    # infer the index from a predicate with bound parameters.
    stmt = ins.values(**values).on_conflict_do_nothing(
        index_elements=[Job.dedupe_key], index_where=text(PENDING_DEDUPE_PREDICATE)
    )
    session.execute(stmt)
