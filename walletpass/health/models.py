"""The certificate expiry warnings emailed, one row per certificate, threshold and owner."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class WarningStatus(StrEnum):
    PENDING = "pending"  # queued; its outbox job sends it
    SENT = "sent"  # the SMTP server accepted it: never sent again
    FAILED = "failed"  # refused for good (a 5xx reply)


class CertificateWarning(MerchantOwned, Base):
    """One email telling an owner that a certificate expires within ``threshold_days``.

    The unique key is the idempotency key: the daily job that finds a certificate within
    30, 7 or 1 days of its end inserts the row and its outbox job in one transaction, so a
    job run twice, or retried, finds the row and queues nothing more.
    """

    __tablename__ = "certificate_warnings"
    __table_args__ = (UniqueConstraint("fingerprint", "threshold_days", "user_id"),)

    id: Mapped[int_pk]
    # SHA-256 of the certificate (hex): a renewed certificate is a new one.
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "pass" or "wwdr"
    pass_type_id: Mapped[str] = mapped_column(String(128))
    threshold_days: Mapped[int] = mapped_column(Integer)
    not_after: Mapped[datetime]
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=WarningStatus.PENDING)
    # The address the server accepted it for (the user's address may change later).
    recipient: Mapped[str | None] = mapped_column(String(320))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    sent_at: Mapped[datetime | None]
