"""Loyalty rows: program, member, ledger entry, reward, reward redemption."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, validates

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk

# Rows inserted by raw SQL (and those migration 0014 added the column to) have no texts.
EMPTY_JSON = sql_text("'{}'")


class ProgramKind(StrEnum):
    POINTS = "points"
    STAMPS = "stamps"
    TIERS = "tiers"
    MEMBERSHIP = "membership"
    OFFERS = "offers"


class Program(MerchantOwned, Base):
    __tablename__ = "programs"

    id: Mapped[int_pk]
    # Public: /join/<slug>. Unique across merchants because the URL carries no merchant.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    # Earning and redemption rules, validated by walletpass.loyalty.rules for the kind.
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Colours, texts and image overrides for the pass design.
    design: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # ``name`` in the merchant's other languages, {"el": {"name": ...}}: see
    # walletpass.i18n.merchant_texts (tiers' names are in the rules).
    translations: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    google_class_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_at]


_PHONE_CHARS = re.compile(r"^\+?[0-9 ().\-/]+$")


def normalize_email(raw: str | None) -> str | None:
    """How a member's email is stored and looked up: trimmed and lower-cased, so that
    ``Ana@Example.test `` is the member ``ana@example.test``; blank is none."""
    return (raw or "").strip().lower() or None


def normalize_phone(raw: str) -> str | None:
    """``+44 20 7946-0000`` → ``+442079460000``: digits with an optional leading +; None
    for what is not a phone number of 6 to 15 digits (the join form says so)."""
    if not _PHONE_CHARS.match(raw):
        return None
    digits = re.sub(r"\D", "", raw)
    if not 6 <= len(digits) <= 15:
        return None
    return ("+" if raw.lstrip().startswith("+") else "") + digits


def stored_phone(raw: str | None) -> str | None:
    """How a member's phone is stored and looked up: normalised when it is a number; text
    that is none (an API client's "ask at the desk") kept as typed; blank is none."""
    text = (raw or "").strip()
    return (normalize_phone(text) or text) if text else None


class Member(MerchantOwned, Base):
    __tablename__ = "members"
    merchant_id_indexed = False  # its unique key and ix_members_merchant_email start with it
    __table_args__ = (
        UniqueConstraint("merchant_id", "external_id"),
        # One member per program per email and per phone, whoever enrols at the same time
        # (the API, a CRM, the join page): the loser of a race is refused here and answered
        # with the winner (walletpass.loyalty.enrolment.enroll). Stored normalised (the
        # validators below), so the plain columns compare as the customer means them;
        # NULLs do not collide.
        UniqueConstraint("program_id", "email"),
        UniqueConstraint("program_id", "phone"),
        Index("ix_members_merchant_email", "merchant_id", "email"),
    )

    id: Mapped[int_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("programs.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    birthday: Mapped[date | None] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(16), default="en")
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    # Indexed: deleting a member sets its referees' column to NULL, a scan without it.
    referred_by_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tier: Mapped[str | None] = mapped_column(String(64))
    # A cache of SUM(ledger_entries.points) kept in the same transaction as every ledger
    # insert, under the member's row lock; tests assert it always equals the ledger.
    points_balance: Mapped[int] = mapped_column(Integer, default=0)
    stamps_balance: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_spend: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    membership_valid_until: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    # The expiry we last warned this member about (so the sweep warns once per lot).
    expiry_warned_for: Mapped[datetime | None]
    created_at: Mapped[created_at]

    # On every write, whichever path (API, CRM, CSV import, join page, admin): the unique
    # keys above hold only if two spellings of one address or number are stored as one.
    @validates("email")
    def _normalized_email(self, _key: str, value: str | None) -> str | None:
        return normalize_email(value)

    @validates("phone")
    def _normalized_phone(self, _key: str, value: str | None) -> str | None:
        return stored_phone(value)


class Actor(StrEnum):
    STAFF = "staff"
    API_KEY = "api_key"
    CRM = "crm"
    SYSTEM = "system"


class LedgerEntry(MerchantOwned, Base):
    """Append-only: never updated or deleted. A correction is a new entry."""

    __tablename__ = "ledger_entries"
    merchant_id_indexed = False  # its unique key and ix_ledger_merchant_receipt do
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        Index("ix_ledger_member_created", "member_id", "created_at"),
        Index("ix_ledger_merchant_receipt", "merchant_id", "receipt_id"),
    )

    id: Mapped[int_pk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # earn, redeem, adjust, expire, refund, bonus
    points: Mapped[int] = mapped_column(Integer, default=0)
    stamps: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(128))
    # Holds an API Idempotency-Key (up to 200 characters) behind and before its parts
    # ("reward#2:api<key id>:<Idempotency-Key>:<reward id>"): migration 0009.
    idempotency_key: Mapped[str] = mapped_column(String(400))
    receipt_id: Mapped[str | None] = mapped_column(String(128))
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id", ondelete="SET NULL")
    )
    reverses_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ledger_entries.id"))
    expires_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]


class RewardKind(StrEnum):
    ITEM = "item"
    DISCOUNT = "discount"
    DONATION = "donation"


class Reward(MerchantOwned, Base):
    __tablename__ = "rewards"
    # One row per place on a stamp card: the rules' rewards are kept in step by that key.
    __table_args__ = (UniqueConstraint("program_id", "card_stamps"),)

    id: Mapped[int_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("programs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default=RewardKind.ITEM)
    cost_points: Mapped[int] = mapped_column(Integer)
    # A stamp card's own reward, written from its program's rules by
    # walletpass.loyalty.rewards.sync_card_rewards: the goal's (card_stamps is the goal, it
    # costs the card's stamps) or an intermediate one (fewer; it costs nothing and is given
    # once for each time the card passes that count). None: a reward the merchant added.
    card_stamps: Mapped[int | None] = mapped_column(Integer)
    min_tier: Mapped[str | None] = mapped_column(String(64))
    stock: Mapped[int | None] = mapped_column(Integer)
    cause: Mapped[str | None] = mapped_column(String(200))
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # ``name`` in the merchant's other languages (walletpass.i18n.merchant_texts).
    translations: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=EMPTY_JSON)
    created_at: Mapped[created_at]


class RewardRedemption(MerchantOwned, Base):
    __tablename__ = "reward_redemptions"

    id: Mapped[int_pk]
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"))
    reward_id: Mapped[int] = mapped_column(BigId, ForeignKey("rewards.id", ondelete="CASCADE"))
    ledger_entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_entries.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[created_at]
