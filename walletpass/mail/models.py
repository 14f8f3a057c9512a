"""The card emails asked for, and whether each went out."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class CardEmailStatus(StrEnum):
    PENDING = "pending"  # queued; its outbox job sends it
    SENT = "sent"  # the SMTP server accepted it: never sent again
    FAILED = "failed"  # refused for good (a 5xx, no address): a new request makes a new one


class CardEmailReason(StrEnum):
    WELCOME = "welcome"  # after joining
    RESEND = "resend"  # "send my card again": the till, the admin, the API


class CardEmail(MerchantOwned, Base):
    """One email with a member's card link, from the request to the SMTP server's accept.

    The row is written with the outbox job that sends it, and its Message-ID is fixed
    then: a retry sends the same message, which a mail client shows once. ``sent_at`` is
    committed right after the server accepts, in a transaction of its own, so a job that
    is run again after that (its own commit failed, its worker died) does not send again.
    """

    __tablename__ = "card_emails"
    merchant_id_indexed = False  # its unique key (merchant_id, request_key) starts with it
    __table_args__ = (
        # One email per request key (the admin's form, the till's tap): a double submit
        # or a retried request is the same email.
        UniqueConstraint("merchant_id", "request_key"),
    )

    id: Mapped[int_pk]
    member_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(16))
    # Who asked: "join", "api:<key id>", "staff:<user id>".
    source: Mapped[str] = mapped_column(String(64), default="")
    request_key: Mapped[str | None] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CardEmailStatus.PENDING)
    # The address the server accepted it for (the member's address may change later).
    recipient: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set by the job that is handing it to the SMTP server, until when it may take: a
    # second job for the same email (a request queued while the first ran) waits, and
    # then finds it sent.
    sending_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    sent_at: Mapped[datetime | None]
