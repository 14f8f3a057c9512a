"""The outbox row."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, created_at, int_pk, utcnow

PENDING_DEDUPE_PREDICATE = "status = 'pending' AND dedupe_key IS NOT NULL"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"  # attempts exhausted or a permanent error; kept with its error


class Job(Base):
    """One side effect to carry out after commit (push, Google PATCH, webhook...).

    ``merchant_id`` is set for every tenant job and NULL for system sweeps (expiry).
    A pending job with a ``dedupe_key`` absorbs later identical jobs: that is how a burst
    of changes to one pass becomes one push per device.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_at"),
        Index(
            "uq_jobs_pending_dedupe",
            "dedupe_key",
            unique=True,
            postgresql_where=text(PENDING_DEDUPE_PREDICATE),
            sqlite_where=text(PENDING_DEDUPE_PREDICATE),
        ),
    )

    id: Mapped[int_pk]
    merchant_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING)
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=12)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    finished_at: Mapped[datetime | None]


class PushPace(Base):
    """The next free wallet-push slot of the whole installation (one row, ``id`` 1).

    Large changes reserve their pushes' slots here (walletpass.jobs.pacing), so spreads
    from concurrent fan-outs in any process follow one another at WALLETPASS_PUSH_RATE
    instead of adding up. Microseconds since the epoch: one UPDATE moves it on with the
    same integer arithmetic on both backends.
    """

    __tablename__ = "push_pace"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_slot_us: Mapped[int] = mapped_column(BigInteger, default=0)
