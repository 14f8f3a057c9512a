"""Google's notification budget: at most 3 notifying writes per object per rolling 24 h.

Past that Google refuses the write with QuotaExceeded (specs/google-wallet.md §5.3), so we
count our own notifying writes and send the 4th silently instead of failing it. A
``quota_exceeded`` row records that Google refused one anyway (another process, a lost row,
a Google-side count we cannot see): it closes the window for the rest of the 24 h.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.google.models import GoogleNotification

WINDOW = timedelta(hours=24)
LIMIT = 3
QUOTA_EXCEEDED = "quota_exceeded"


def used(session: Session, object_id: str, now: datetime) -> int:
    """Notifying writes to ``object_id`` in the 24 h before ``now``."""
    return (
        session.scalar(
            select(func.count())
            .select_from(GoogleNotification)
            .where(
                GoogleNotification.object_id == object_id,
                GoogleNotification.created_at > now - WINDOW,
                GoogleNotification.kind != QUOTA_EXCEEDED,
            )
        )
        or 0
    )


def may_notify(session: Session, object_id: str, now: datetime) -> bool:
    refused = session.scalar(
        select(func.count())
        .select_from(GoogleNotification)
        .where(
            GoogleNotification.object_id == object_id,
            GoogleNotification.created_at > now - WINDOW,
            GoogleNotification.kind == QUOTA_EXCEEDED,
        )
    )
    return not refused and used(session, object_id, now) < LIMIT


def record(
    session: Session,
    merchant_id: int,
    pass_id: int,
    object_id: str,
    kind: str,
    message_id: str | None,
    now: datetime,
) -> GoogleNotification:
    """Count one notifying write (``kind`` "update" or "message"), or a refusal
    (``kind`` :data:`QUOTA_EXCEEDED`), in the caller's transaction."""
    row = GoogleNotification(
        merchant_id=merchant_id,
        pass_id=pass_id,
        object_id=object_id,
        kind=kind,
        message_id=message_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row
