"""Campaign and per-recipient rows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # a campaign.launch job is waiting for scheduled_at
    SENDING = "sending"  # recipients chosen, fan-out batches running
    FINISHED = "finished"
    CANCELLED = "cancelled"


class RecipientStatus(StrEnum):
    PENDING = "pending"  # waiting for its fan-out batch
    SENT = "sent"  # overlay live, pushes and Google message queued
    SKIPPED = "skipped"  # over the marketing budget at send time (skip_reason says why)
    HOLDOUT = "holdout"  # randomly held back: never sent, the comparison group


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
    # What the card shows: ``title`` is the offer field's label (and Google's message
    # header), ``message`` its value and the lock-screen text. Variants override both.
    title: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    # {"kind": "all" | "tier" | "lapsed" | "birthday_month" | "tag" | "rfm", ...}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [{"name": "A", "message": "...", "title": "...", "share": 0.5}, ...]; empty: one variant.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    holdout_share: Mapped[float] = mapped_column(Float, default=0.0)
    # Seeds the holdout and variant draw, so a launch is reproducible (and testable).
    seed: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime | None]
    # The overlay shows from the recipient's send until this moment, then reverts.
    ends_at: Mapped[datetime | None]
    # Results window: redemptions and till-scan uplift count within this many days.
    window_days: Mapped[int] = mapped_column(Integer, default=14)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT)
    # Counters kept by launch and the fan-out batches (the progress view reads them).
    total: Mapped[int] = mapped_column(Integer, default=0)  # recipients to send (no holdout)
    holdout_count: Mapped[int] = mapped_column(Integer, default=0)
    excluded_no_consent: Mapped[int] = mapped_column(Integer, default=0)
    excluded_no_pass: Mapped[int] = mapped_column(Integer, default=0)
    skipped_budget: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    # Pacing of the Apple pushes (a campaign over walletpass.passes.changes.PACE_ABOVE
    # recipients): the rate they were spread at, how many were queued, and when the last
    # one queued so far is due. NULL rate: pushed at once.
    push_rate: Mapped[int | None] = mapped_column(Integer)
    pushes_paced: Mapped[int] = mapped_column(Integer, default=0)
    pushes_due_at: Mapped[datetime | None]
    created_at: Mapped[created_at]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CampaignRecipient(MerchantOwned, Base):
    """One audience member of one campaign, treated or held out."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id"),
        # The overlay looks up a member's newest sent campaign on every pass render, and
        # the budget counts a pass's recent marketing sends: both by these keys.
        Index("ix_campaign_recipients_member_sent", "member_id", "sent_at"),
        Index("ix_campaign_recipients_pass_sent", "pass_id", "sent_at"),
    )

    id: Mapped[int_pk]
    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"))
    pass_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("passes.id", ondelete="SET NULL"))
    variant: Mapped[str | None] = mapped_column(String(32))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=RecipientStatus.PENDING)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    # Which wallets the send went to (the pass had an Apple registration / a Google object).
    via_apple: Mapped[bool] = mapped_column(Boolean, default=False)
    via_google: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime | None]
    # When its Google message job was done: the Google delivery the results count (the
    # job row is pruned after WALLETPASS_JOB_RETENTION_DAYS).
    google_delivered_at: Mapped[datetime | None]
    # Reserved for a later "measure" pass; results are computed from events on the fly.
    delivered_at: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
