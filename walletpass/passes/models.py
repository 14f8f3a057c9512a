"""Pass rows and their install/removal events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class PassStatus(StrEnum):
    ACTIVE = "active"
    VOIDED = "voided"
    EXPIRED = "expired"


class Pass(MerchantOwned, Base):
    """One card or coupon as both wallets hold it.

    ``version`` counts content changes. ``change_stamp`` orders changes across passes for
    Apple's ``passesUpdatedSince`` tag (see walletpass.passes.stamps). ``modified_at`` is the
    Last-Modified time, kept strictly increasing in whole seconds per pass so that an
    HTTP-date comparison can never hide a change made within the same second.
    """

    __tablename__ = "passes"
    # No index holds version, change_stamp or modified_at: a pass is bumped on every
    # change of its holder's balance, and PostgreSQL can then update the row in place
    # (HOT) instead of adding an entry to each of the table's indexes. Apple's
    # passesUpdatedSince listing reaches passes through the device's registrations.

    id: Mapped[int_pk]
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    pass_type_id: Mapped[str] = mapped_column(String(128))
    auth_token: Mapped[str] = mapped_column(String(64))
    # What the barcode carries: an opaque, unguessable token resolved by the scan API.
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    program_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("programs.id", ondelete="SET NULL")
    )
    member_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    coupon_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("coupons.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=PassStatus.ACTIVE)
    version: Mapped[int] = mapped_column(Integer, default=1)
    change_stamp: Mapped[int] = mapped_column(BigInteger, default=0)
    modified_at: Mapped[datetime]
    # Signed artefacts of ``signed_version``: a fetch of an unchanged pass re-uses them.
    signed_version: Mapped[int | None] = mapped_column(Integer)
    # Deferred (loaded together on first use): only a fetch of the .pkpass needs these
    # kilobytes, and a till scan or a device listing loads the row on every request.
    signed_pass_json: Mapped[bytes | None] = mapped_column(
        LargeBinary, deferred=True, deferred_group="signed"
    )
    signed_manifest: Mapped[bytes | None] = mapped_column(
        LargeBinary, deferred=True, deferred_group="signed"
    )
    signature: Mapped[bytes | None] = mapped_column(
        LargeBinary, deferred=True, deferred_group="signed"
    )
    # Which files the kept signature goes with (walletpass.passes.stored), and the first
    # moment the clock alone may change what the card shows (an offer's end, a
    # membership's lapse): until then a fetch of ``signed_version`` renders nothing.
    signed_files: Mapped[str | None] = mapped_column(String(64))
    signed_until: Mapped[datetime | None]
    google_object_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]


class PassEvent(MerchantOwned, Base):
    """Installs, removals and fetches per platform: the KPI and delivery-proxy source."""

    __tablename__ = "pass_events"
    __table_args__ = (Index("ix_pass_events_merchant_created", "merchant_id", "created_at"),)

    id: Mapped[int_pk]
    pass_id: Mapped[int] = mapped_column(BigId, ForeignKey("passes.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))  # apple, google
    kind: Mapped[str] = mapped_column(String(16))  # installed, removed, fetched, pushed
    version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[created_at]


class ChangeCounter(Base):
    """SQLite's change-stamp counter (one row). PostgreSQL uses transaction ids instead."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
