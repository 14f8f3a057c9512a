"""Tenant rows: merchant, store, user, API key."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int_pk]
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    language: Mapped[str] = mapped_column(String(16), default="en")
    # Quiet hours (local time, minutes since midnight): marketing pushes wait until they end.
    quiet_start_minute: Mapped[int | None] = mapped_column(Integer)
    quiet_end_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[created_at]


class Store(MerchantOwned, Base):
    __tablename__ = "stores"
    __table_args__ = (UniqueConstraint("merchant_id", "code"),)

    id: Mapped[int_pk]
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[created_at]


class Role(StrEnum):
    OWNER = "owner"
    MARKETER = "marketer"
    STAFF = "staff"


class User(MerchantOwned, Base):
    __tablename__ = "users"

    id: Mapped[int_pk]
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.STAFF)
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id", ondelete="SET NULL")
    )
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Moved on by signing out: a session cookie signed in under an earlier one is refused.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[created_at]


class Scope(StrEnum):
    TILL = "till"
    CRM = "crm"
    ADMIN = "admin"
    READ = "read"


class ApiKey(MerchantOwned, Base):
    """An API key. Only a hash is stored; the key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int_pk]
    # Public lookup part of the key ("wp_<prefix>_<secret>"): found by index, then the
    # secret's hash is compared in constant time.
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id", ondelete="SET NULL")
    )
    created_at: Mapped[created_at]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
