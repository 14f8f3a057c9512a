"""Offer and coupon rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk

# Limits every path that writes an offer keeps (the API's schema, the admin's form): the
# columns are 32-bit integers, and no till needs more.
MAX_USES_PER_COUPON = 1000
MAX_TOTAL_CAP = 1_000_000_000
# Rows inserted by raw SQL (and those migration 0014 added the column to) have no texts.
EMPTY_JSON = sql_text("'{}'")


class Offer(MerchantOwned, Base):
    __tablename__ = "offers"

    id: Mapped[int_pk]
    program_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("programs.id", ondelete="SET NULL")
    )
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[str] = mapped_column(Text, default="")
    # title, description and terms in the merchant's other languages, {"el": {"title": ...}}
    # (walletpass.i18n.merchant_texts).
    translations: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_JSON)
    # e.g. {"type": "percent", "value": 20} or {"type": "amount", "value": "5.00"}
    discount: Mapped[dict[str, Any]] = mapped_column(default=dict)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    uses_per_coupon: Mapped[int] = mapped_column(Integer, default=1)
    total_cap: Mapped[int | None] = mapped_column(Integer)
    redeemed_count: Mapped[int] = mapped_column(Integer, default=0)
    # Shown on loyalty cards as an overlay while valid; reverts on its own when it ends.
    overlay: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class Coupon(MerchantOwned, Base):
    __tablename__ = "coupons"
    __table_args__ = (
        # One flyer coupon per offer per customer, whichever browser claims it and however
        # many claim at once (walletpass.offers.services.claim_coupon answers the loser of
        # a race with the winner's). Email first: a rollover asks which offers one
        # customer holds (next_offer). NULLs (coupons not claimed by email) never collide.
        Index("uq_coupons_claim_email_offer_id", "claim_email", "offer_id", unique=True),
    )

    id: Mapped[int_pk]
    offer_id: Mapped[int] = mapped_column(BigId, ForeignKey("offers.id", ondelete="CASCADE"))
    # None for an anonymous flyer coupon.
    member_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members.id", ondelete="SET NULL")
    )
    # The customer's email, trimmed and lower-cased, for a coupon claimed from a flyer (and
    # the coupons its pass rolled over to): personal data, shown to no customer, logged
    # nowhere. None for a coupon the shop issued to a member or by hand.
    claim_email: Mapped[str | None] = mapped_column(String(320))
    uses: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, used, void
    created_at: Mapped[created_at]
    last_used_at: Mapped[datetime | None]
