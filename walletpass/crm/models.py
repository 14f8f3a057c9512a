"""Webhook endpoints, deliveries, inbound events and API idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletpass.db import Base, BigId, MerchantOwned, created_at, int_pk


class WebhookEndpoint(MerchantOwned, Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int_pk]
    url: Mapped[str] = mapped_column(String(2000))
    # Encrypted with WALLETPASS_SECRET_KEY (walletpass.security.seal).
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    events: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class WebhookDelivery(MerchantOwned, Base):
    """One event for one endpoint, and only one: the publish job that writes these rows
    may run again after a crash, and then adds none. The unique index also serves an
    endpoint's delivery log (it starts with endpoint_id)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)

    id: Mapped[int_pk]
    endpoint_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    delivered_at: Mapped[datetime | None]


class InboundEvent(MerchantOwned, Base):
    """A CRM event id seen once; a replay finds this row and changes nothing."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("merchant_id", "source", "event_id"),)

    id: Mapped[int_pk]
    source: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]


class IdempotencyRecord(MerchantOwned, Base):
    """The stored answer to an API write sent with an Idempotency-Key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("merchant_id", "key"),)

    id: Mapped[int_pk]
    # "<api key id>:<Idempotency-Key>": the header's 200 characters with their prefix.
    key: Mapped[str] = mapped_column(String(400))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[created_at]


class InboundSource(MerchantOwned, Base):
    """A CRM allowed to post signed events to ``/webhooks/crm/<name>``.

    The URL carries no merchant, so ``name`` is unique across merchants: the request finds
    its source (and so its merchant and secret) by name before anything else. During a
    secret rotation the previous secret stays valid until ``previous_expires_at``, so the
    CRM can switch over without dropping events.
    """

    __tablename__ = "inbound_sources"

    id: Mapped[int_pk]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Where member.upsert enrolls new members when the event names no program.
    program_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("programs.id", ondelete="SET NULL")
    )
    # Encrypted with WALLETPASS_SECRET_KEY (walletpass.security.seal).
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
    rotated_at: Mapped[datetime | None]
