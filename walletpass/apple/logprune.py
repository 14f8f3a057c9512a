"""The ``apple.logs.prune`` job: Wallet's log messages and APNs refusals are kept for
WALLETPASS_WALLET_LOG_DAYS (90), then deleted, 10,000 rows a round (walletpass.jobs.prune).

POST /v1/log is unauthenticated and every phone in a misconfigured installation posts to
it after each failed update; the push job adds a row per merchant and refusal per batch.
Without a prune ``apple_logs`` grows for ever, and the Wallet problems page groups all of
it on every view. What an operator needs is recent: a pattern still happening shows again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from walletpass.apple.models import AppleLog
from walletpass.db import utcnow
from walletpass.jobs.models import Job
from walletpass.jobs.prune import delete_chunk
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import JobContext, handler, periodic

KIND = "apple.logs.prune"
INTERVAL = timedelta(days=1)


@handler(KIND)
def prune_logs(ctx: JobContext, job: Job) -> None:
    cutoff = utcnow() - timedelta(days=ctx.settings.wallet_log_days)
    more = delete_chunk(ctx.session, AppleLog, AppleLog.created_at < cutoff)
    schedule(ctx.session, utcnow() if more else utcnow() + INTERVAL)


@periodic
def schedule(session: Session, run_at: datetime | None = None) -> None:
    """Make sure a prune is queued (one pending at a time)."""
    enqueue(
        session,
        KIND,
        {},
        merchant_id=None,
        dedupe_key="apple:logs:prune",
        run_at=run_at or utcnow(),
    )
