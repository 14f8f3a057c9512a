"""The ``jobs.prune`` job: done jobs are deleted once they are older than the retention.

Every change that reaches a wallet or a CRM leaves a job row; without pruning the table
grows by a row per push for ever, and every claim and dedupe lookup pays for it. Dead
jobs are kept (they carry the error an operator needs); so are pending and running ones.
What must outlive its job is recorded on the domain's own rows when the job is done
(registry.on_done: a campaign's Google deliveries, on its recipient rows).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import JobContext, handler, periodic

KIND = "jobs.prune"
PRUNE_INTERVAL = timedelta(hours=1)
# Rows deleted in one job's transaction: a first prune of a big table goes in short
# transactions, the next chunk queued at once, instead of one long delete holding locks.
CHUNK = 10_000


@handler(KIND)
def prune(ctx: JobContext, job: Job) -> None:
    cutoff = utcnow() - timedelta(days=ctx.settings.job_retention_days)
    more = delete_chunk(ctx.session, Job, Job.status == JobStatus.DONE, Job.finished_at < cutoff)
    # A full chunk may leave more behind: the next one at once, else in an hour.
    schedule(ctx.session, utcnow() if more else utcnow() + PRUNE_INTERVAL)


def delete_chunk(session: Session, model: Any, *where: Any) -> bool:
    """Delete up to CHUNK rows of ``model`` (every merchant's) matching ``where``; True when
    a whole chunk went, so more may be left for the next round."""
    ids = list(
        session.scalars(
            select(model.id).where(*where).limit(CHUNK).execution_options(all_merchants=True)
        )
    )
    if ids:
        session.execute(
            delete(model)
            .where(model.id.in_(ids))
            .execution_options(synchronize_session=False, all_merchants=True)
        )
    return len(ids) == CHUNK


@periodic
def schedule(session: Session, run_at: datetime | None = None) -> None:
    """Make sure a prune is queued (idempotent: one pending prune at a time)."""
    enqueue(session, KIND, {}, merchant_id=None, dedupe_key="jobs:prune", run_at=run_at or utcnow())
