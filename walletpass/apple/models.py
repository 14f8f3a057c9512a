"""Devices, their pass registrations, and the logs Wallet posts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk, utcnow


class Device(MerchantOwned, Base):
    """A Wallet install (deviceLibraryIdentifier) as seen by one merchant and pass type."""

    __tablename__ = "apple_devices"
    __table_args__ = (
        UniqueConstraint("merchant_id", "library_id", "pass_type_id"),
        # Apple's web service names a device by library id and pass type, not merchant.
        Index("ix_apple_devices_library", "library_id", "pass_type_id"),
    )

    id: Mapped[int_pk]
    library_id: Mapped[str] = mapped_column(String(128))
    pass_type_id: Mapped[str] = mapped_column(String(128))
    push_token: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Registration(MerchantOwned, Base):
    __tablename__ = "apple_registrations"
    __table_args__ = (
        UniqueConstraint("device_id", "pass_id"),
        Index("ix_apple_registrations_pass", "pass_id"),
    )

    id: Mapped[int_pk]
    device_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("apple_devices.id", ondelete="CASCADE")
    )
    pass_id: Mapped[int] = mapped_column(BigId, ForeignKey("passes.id", ondelete="CASCADE"))
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AppleLog(Base):
    """A problem Wallet reported: a message from its POST /v1/log (source "wallet"), or
    APNs refusing pushes (source "apns", one row per reason per batch, ``count`` pushes).

    Not tenant-owned: the log endpoint is unauthenticated, so ``merchant_id`` is set only
    when the message names a pass of ours (walletpass.apple.problems), and the admin's
    "Wallet problems" page groups a merchant's rows by ``pattern``.
    """

    __tablename__ = "apple_logs"
    __table_args__ = (Index("ix_apple_logs_merchant_pattern", "merchant_id", "pattern"),)

    id: Mapped[int_pk]
    message: Mapped[str] = mapped_column(Text)
    serial: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
    merchant_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("merchants.id", ondelete="CASCADE")
    )
    source: Mapped[str] = mapped_column(String(16), default="wallet", server_default="wallet")
    # A known problem's key (walletpass.apple.problems.KNOWN), or the message with its
    # serials, URLs, dates and numbers taken out, so that alike messages group together.
    pattern: Mapped[str | None] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
