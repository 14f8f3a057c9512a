"""Jobs at a row's moments: an offer's or a reward's start and end.

A moment passing writes nothing, yet what a card shows changes with it; a job queued for
that moment tells the wallets. The row's dates may be edited after the job is queued, so
the job carries the moment it was queued for and finds out, when it runs, whether that
is still one of the row's dates (:func:`moment_due`): a stale job does nothing, and the
job queued for the new date does the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import RetryLater

if TYPE_CHECKING:
    from walletpass.jobs.models import Job


def enqueue_at_moments(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    moments: Iterable[datetime | None],
    *,
    merchant_id: int | None,
    now: datetime | None = None,
) -> None:
    """One ``kind`` job at each of ``moments`` still to come, its payload ``payload`` and
    ``"at"`` (the moment, ISO 8601). Saving the same dates again queues nothing more."""
    now = now or utcnow()
    names = ",".join(f"{k}={v}" for k, v in sorted(payload.items()))
    for moment in moments:
        if moment is not None and moment > now:
            enqueue(
                session,
                kind,
                {**payload, "at": moment.isoformat()},
                merchant_id=merchant_id,
                dedupe_key=f"{kind}:{names}:{moment.isoformat()}",
                run_at=moment,
            )


def moment_due(job: Job, moments: Iterable[datetime | None]) -> datetime | None:
    """The moment ``job`` was queued for if it is still one of ``moments`` (the row's
    dates now), else None: the dates were edited and this job is stale.

    :raise RetryLater: the moment has not come on this machine's clock yet (the job was
        claimed by a worker whose clock runs ahead): a card rendered now would still
        show the time before it.
    """
    at = datetime.fromisoformat(str(job.payload.get("at")))
    if at not in set(moments):
        return None
    now = utcnow()
    if now < at:
        raise RetryLater(f"{job.kind} is due at {at:%H:%M:%S}", (at - now).total_seconds())
    return at
