"""Google-side bookkeeping: the notification budget and callback nonces."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class GoogleNotification(MerchantOwned, Base):
    """One notifying write to a Google object; the rolling 24 h budget counts these."""

    __tablename__ = "google_notifications"
    __table_args__ = (Index("ix_google_notifications_object", "object_id", "created_at"),)

    id: Mapped[int_pk]
    pass_id: Mapped[int] = mapped_column(BigId, ForeignKey("passes.id", ondelete="CASCADE"))
    object_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # update, message
    message_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[created_at]


class GoogleCallbackNonce(Base):
    """Nonces of verified callbacks; Google retries, so a seen nonce is acknowledged only."""

    __tablename__ = "google_callback_nonces"

    id: Mapped[int_pk]
    nonce: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[created_at]
