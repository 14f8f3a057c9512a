"""Every scan at a till, successful or not."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class Scan(MerchantOwned, Base):
    __tablename__ = "scans"
    merchant_id_indexed = False  # ix_scans_merchant_created starts with it
    __table_args__ = (Index("ix_scans_merchant_created", "merchant_id", "created_at"),)

    id: Mapped[int_pk]
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id", ondelete="SET NULL")
    )
    api_key_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    pass_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("passes.id", ondelete="SET NULL"))
    member_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    coupon_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("coupons.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    receipt_id: Mapped[str | None] = mapped_column(String(128))
    result: Mapped[str] = mapped_column(String(16))  # ok, error
    error_type: Mapped[str | None] = mapped_column(String(200))
    points_delta: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]
    undone_at: Mapped[datetime | None]
