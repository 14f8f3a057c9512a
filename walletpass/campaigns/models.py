"""Campaign and per-recipient rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class Campaign(MerchantOwned, Base):
    __tablename__ = "campaigns"

    id: Mapped[int_pk]
    program_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("programs.id", ondelete="SET NULL")
    )
    offer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("offers.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    # {"kind": "all" | "tier" | "lapsed" | "birthday_month" | "tag" | "rfm", ...}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [{"name": "A", "message": "...", "share": 0.5}, ...]; empty means one variant.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    holdout_share: Mapped[float] = mapped_column(Float, default=0.0)
    scheduled_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="draft")
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_at]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignRecipient(MerchantOwned, Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)

    id: Mapped[int_pk]
    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"))
    pass_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("passes.id", ondelete="SET NULL"))
    variant: Mapped[str | None] = mapped_column(String(32))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
