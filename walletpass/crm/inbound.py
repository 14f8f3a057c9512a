"""Inbound CRM webhooks: authenticate the raw bytes, parse, validate, apply once.

Order matters: the signature is checked on the raw body before any parsing, then the
JSON is validated against ``crm/contract/inbound/<type>.schema.json``, then the event is
applied through the same domain services as the API. The ``InboundEvent`` row is
inserted in the same transaction as the effect, first: a concurrent replay of the same
event id blocks on the unique index (PostgreSQL) or waits for the write lock (SQLite),
then finds the row and changes nothing. A failed event rolls back with its row, so the
CRM's retry of it is applied. Flask-free; ``walletpass.crm.views`` is the HTTP edge.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.crm import schemas, signing
from walletpass.crm.members import UNSET, MemberFields, merge_tags, require_member, upsert_member
from walletpass.crm.models import InboundEvent, InboundSource
from walletpass.db import utcnow
from walletpass.loyalty import earning, ledger, memberships, purchases
from walletpass.loyalty.amounts import check_money
from walletpass.loyalty.models import Member, Program
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import issue_coupon
from walletpass.passes.models import Pass, PassStatus
from walletpass.runtime import Runtime
from walletpass.security import SealError, random_token, seal, unseal
from walletpass.tenancy.models import Merchant

log = logging.getLogger(__name__)

# CRM events are small; a cap bounds what an unauthenticated caller can make us hash.
MAX_BODY_BYTES = 256 * 1024
DEFAULT_ROTATION_GRACE = timedelta(hours=24)


class BadSignature(errors.Unauthenticated):
    code = "invalid-signature"
    title = "The webhook signature is not valid"


class UnknownEventType(errors.ValidationFailed):
    code = "unknown-event-type"
    title = "This event type is not supported"


class PayloadTooLarge(errors.WalletpassError):
    status = 413
    code = "payload-too-large"
    title = "The webhook body is too large"


class SecretUnavailable(errors.WalletpassError):
    status = 500
    code = "secret-unavailable"
    title = "The source's secret cannot be read"


class UnknownOffer(errors.ValidationFailed):
    code = "unknown-offer"
    title = "No offer has this slug"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: int
    data: dict[str, Any]


@dataclass(frozen=True)
class VerifiedSource:
    id: int
    merchant_id: int
    name: str
    program_id: int | None


@dataclass
class Outcome:
    status: str  # "applied" or "duplicate"
    event: Event
    result: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "id": self.event.id, "type": self.event.type}
        if self.result:
            body["result"] = self.result
        return body


# --- sources --------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + random_token(32)


def create_source(
    session: Session,
    settings: Settings,
    *,
    merchant_id: int,
    name: str,
    program_id: int | None = None,
) -> tuple[InboundSource, str]:
    """Register a CRM source; returns it with its secret (shown once, stored sealed).

    :raise errors.Conflict: the name is taken (names are global: the URL has no merchant).
    """
    name = name.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise errors.ValidationFailed("a source name is 1-64 letters, digits, '-', '_' or '.'")
    taken = session.scalar(
        select(InboundSource.id)
        .where(InboundSource.name == name)
        .execution_options(all_merchants=True)
    )
    if taken is not None:
        raise errors.Conflict(f"the source name {name!r} is taken")
    secret = new_secret()
    source = InboundSource(
        merchant_id=merchant_id,
        name=name,
        program_id=program_id,
        secret_sealed=seal(settings.secret_key, secret.encode()),
        active=True,
    )
    session.add(source)
    session.flush()
    return source, secret


def rotate_source(
    session: Session,
    settings: Settings,
    source: InboundSource,
    *,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
) -> str:
    """Give ``source`` a new secret; the current one stays valid for ``grace``.

    With ``grace`` of zero the old secret stops working at once (a leaked secret).
    """
    secret = new_secret()
    now = utcnow()
    if grace > timedelta(0):
        source.previous_secret_sealed = source.secret_sealed
        source.previous_expires_at = now + grace
    else:
        source.previous_secret_sealed = None
        source.previous_expires_at = None
    source.secret_sealed = seal(settings.secret_key, secret.encode())
    source.rotated_at = now
    session.flush()
    return secret


def _load_source(runtime: Runtime, name: str) -> tuple[VerifiedSource, list[bytes]] | None:
    with runtime.transaction() as session:
        source = session.scalars(
            select(InboundSource)
            .where(InboundSource.name == name, InboundSource.active.is_(True))
            .execution_options(all_merchants=True)
        ).one_or_none()
        if source is None:
            return None
        key = runtime.settings.secret_key
        try:
            secrets = [unseal(key, source.secret_sealed)]
            if (
                source.previous_secret_sealed is not None
                and source.previous_expires_at is not None
                and source.previous_expires_at > utcnow()
            ):
                secrets.append(unseal(key, source.previous_secret_sealed))
        except SealError as exc:
            log.error("inbound source %s: %s", name, exc)
            raise SecretUnavailable(
                "the source's secret cannot be unsealed with this WALLETPASS_SECRET_KEY"
            ) from None
        return (
            VerifiedSource(source.id, source.merchant_id, source.name, source.program_id),
            secrets,
        )


# --- the request ------------------------------------------------------------------------


def receive(
    runtime: Runtime,
    source_name: str,
    body: bytes,
    signature_header: str | None,
    *,
    now: float | None = None,
) -> Outcome:
    """Handle one ``POST /webhooks/crm/<source_name>``.

    :raise BadSignature: unknown source or no valid signature (401; the two are not
        told apart, so the endpoint does not reveal which source names exist).
    :raise UnknownEventType: a ``type`` with no schema (422).
    :raise errors.ValidationFailed: not JSON, or not valid for its schema (422).
    :raise errors.WalletpassError: a domain refusal (e.g. a refund of an unknown receipt).
    """
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"at most {MAX_BODY_BYTES} bytes")
    loaded = _load_source(runtime, source_name)
    if loaded is None:
        raise BadSignature("unknown source or invalid signature")
    source, secrets = loaded
    try:
        signing.verify(signature_header, body, secrets, now=now)
    except signing.SignatureError as exc:
        raise BadSignature(str(exc)) from None
    event = parse_event(body)
    return apply_event(runtime, source, event)


def parse_event(body: bytes) -> Event:
    """JSON, then the envelope's type, then the type's schema; all errors are 422s."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.ValidationFailed(
            "the body is not JSON", errors=[{"field": "body", "message": str(exc)}]
        ) from None
    if not isinstance(document, dict):
        raise errors.ValidationFailed(
            "the body must be a JSON object",
            errors=[{"field": "body", "message": "not an object"}],
        )
    event_type = document.get("type")
    # Both a schema (the contract) and a handler: neither is enough on its own.
    known = schemas.event_types("inbound") & HANDLERS.keys()
    if not isinstance(event_type, str) or event_type not in known:
        raise UnknownEventType(
            f"unknown event type {event_type!r}; supported: {', '.join(sorted(known))}",
            errors=[{"field": "type", "message": "unknown event type"}],
        )
    problems = schemas.field_errors("inbound", event_type, document)
    if problems:
        raise errors.ValidationFailed(f"invalid {event_type} event", errors=problems)
    return Event(document["id"], event_type, document["created"], document["data"])


def apply_event(runtime: Runtime, source: VerifiedSource, event: Event) -> Outcome:
    handler = HANDLERS[event.type]
    try:
        with runtime.transaction(source.merchant_id) as session:
            seen = session.scalar(
                select(InboundEvent.id).where(
                    InboundEvent.source == source.name, InboundEvent.event_id == event.id
                )
            )
            if seen is not None:
                return Outcome("duplicate", event)
            try:
                # A savepoint: when a concurrent twin committed this id first, only the
                # insert is undone and the answer is "duplicate", not a 500.
                with session.begin_nested():
                    session.add(
                        InboundEvent(
                            merchant_id=source.merchant_id,
                            source=source.name,
                            event_id=event.id,
                            event_type=event.type,
                        )
                    )
                    session.flush()
            except IntegrityError:
                return Outcome("duplicate", event)
            context = _Context(session, runtime.settings, source, event)
            result = handler(context, event.data)
            return Outcome("applied", event, result)
    except IntegrityError as exc:
        # Another event changed the same rows at the same time (e.g. two events creating
        # one external id). Nothing was applied; the CRM's retry will be.
        log.info("inbound %s %s conflicted: %s", event.type, event.id, exc.orig)
        raise errors.Conflict("a concurrent change conflicted with this event; retry it") from None


# --- event handlers ---------------------------------------------------------------------


@dataclass
class _Context:
    session: Session
    settings: Settings
    source: VerifiedSource
    event: Event

    @property
    def actor(self) -> ledger.Actor:
        return ledger.Actor("crm", self.source.name)

    def key(self, purpose: str) -> str:
        """A ledger idempotency key for this event (at most 200 characters)."""
        key = f"crm:{self.source.id}:{purpose}:{self.event.id}"
        if len(key) > 200:
            digest = hashlib.sha256(self.event.id.encode()).hexdigest()
            key = f"crm:{self.source.id}:{purpose}:sha256:{digest}"
        return key


def _program(context: _Context, slug: str | None) -> Program | None:
    if slug:
        program = context.session.scalars(select(Program).where(Program.slug == slug)).one_or_none()
        if program is None:
            raise errors.ValidationFailed(
                f"no program {slug!r}",
                errors=[{"field": "data.program", "message": "no such program"}],
            )
        return program
    if context.source.program_id is not None:
        return context.session.scalars(
            select(Program).where(Program.id == context.source.program_id)
        ).one_or_none()
    return None


def _balances(member: Any) -> dict[str, Any]:
    return {
        "member_id": member.id,
        "points_balance": member.points_balance,
        "stamps_balance": member.stamps_balance,
        "tier": member.tier,
    }


def _change(change: ledger.Change, member: Any) -> dict[str, Any]:
    return {
        **_balances(member),
        "points": change.points,
        "stamps": change.stamps,
        "replayed": change.replayed,
    }


def _member_upsert(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    program = _program(context, data.get("program"))
    birthday = data.get("birthday", UNSET)
    if isinstance(birthday, str):
        birthday = _date(birthday, "data.birthday")
    fields = MemberFields(
        external_id=data.get("external_id"),
        email=data.get("email"),
        name=data.get("name", UNSET),
        phone=data.get("phone", UNSET),
        birthday=birthday,
        language=data.get("language", UNSET),
        marketing_consent=data.get("marketing_consent", UNSET),
        tags=data.get("tags") or {},
    )
    result = upsert_member(
        context.session,
        context.settings,
        fields,
        program=program,
        actor=context.actor,
        source=f"crm:{context.source.name}",
    )
    answer: dict[str, Any] = {
        "member_id": result.member.id,
        "created": result.created,
        "changed": result.changed,
    }
    if result.pass_row is not None:
        answer["pass_serial"] = result.pass_row.serial
        answer["pass_url"] = _pass_url(context.settings, result.pass_row)
    return answer


def _amounts_held(context: _Context, member: Member, data: dict[str, Any]) -> None:
    """The event's amounts in the shop's currency, refused by the field the CRM sent
    (``data.amount``) when it cannot hold them: TWD 12.5 is a CRM's rounding bug, not a
    purchase to count (the loyalty operations refuse it too, named as the API's)."""
    merchant = context.session.get(Merchant, member.merchant_id)
    assert merchant is not None
    if "amount" in data:
        check_money(Decimal(data["amount"]), merchant.currency, "data.amount")
    for i, line in enumerate(data.get("lines", [])):
        check_money(Decimal(line["amount"]), merchant.currency, f"data.lines[{i}].amount")


def _purchase(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    member = require_member(context.session, data["member"])
    _amounts_held(context, member, data)
    lines = [
        earning.Line(Decimal(line["amount"]), line.get("category"))
        for line in data.get("lines", [])
    ]
    change = purchases.record_purchase(
        context.session,
        context.settings,
        member,
        amount=Decimal(data["amount"]),
        receipt_id=data["receipt_id"],
        actor=context.actor,
        currency=data.get("currency"),
        lines=lines or None,
        at=_datetime(data["at"], "data.at") if "at" in data else None,
    )
    return _change(change, member)


def _refund(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    member = require_member(context.session, data["member"])
    _amounts_held(context, member, data)
    change = ledger.refund(
        context.session,
        context.settings,
        member,
        receipt_id=data["receipt_id"],
        amount=Decimal(data["amount"]),
        refund_id=data.get("refund_id"),
        actor=context.actor,
    )
    return _change(change, member)


def _points_adjust(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    member = require_member(context.session, data["member"])
    change = ledger.adjust(
        context.session,
        context.settings,
        member,
        points=data["points"],
        reason=data["reason"],
        key=context.key("adjust"),
        actor=context.actor,
    )
    return _change(change, member)


def _membership_payment(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    member = require_member(context.session, data["member"])
    _amounts_held(context, member, data)
    receipt_id = data.get("receipt_id")
    change = memberships.renew_membership(
        context.session,
        context.settings,
        member,
        # The receipt's key is the till's and the API's: one payment renews once however
        # it arrives; without a receipt, the event id keys it.
        key=f"membership:{receipt_id}" if receipt_id else context.key("membership"),
        actor=context.actor,
        amount=Decimal(data["amount"]) if "amount" in data else None,
        currency=data.get("currency"),
        receipt_id=receipt_id,
    )
    until = member.membership_valid_until
    return {
        "member_id": member.id,
        "membership_valid_until": until.isoformat() if until else None,
        "replayed": change.replayed,
    }


def _member_tag(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    found = require_member(context.session, data["member"])
    member = ledger.lock_member(context.session, found.id)
    changes: dict[str, Any] = dict.fromkeys(data.get("add", []), True)
    changes.update(dict.fromkeys(data.get("remove", [])))
    changes.update(data.get("set", {}))
    tags = merge_tags(member.tags, changes)
    if tags != (member.tags or {}):
        member.tags = tags  # reassigned: the JSON column does not see in-place edits
    return {"member_id": member.id, "tags": tags}


def _offer_assign(context: _Context, data: dict[str, Any]) -> dict[str, Any]:
    session = context.session
    member = require_member(session, data["member"])
    offer = session.scalars(select(Offer).where(Offer.slug == data["offer"])).one_or_none()
    if offer is None:
        raise UnknownOffer(
            f"no offer {data['offer']!r}",
            errors=[{"field": "data.offer", "message": "no such offer"}],
        )
    existing = session.execute(
        select(Coupon, Pass)
        .join(Pass, Pass.coupon_id == Coupon.id)
        .where(
            Coupon.offer_id == offer.id,
            Coupon.member_id == member.id,
            Coupon.status == "active",
            Pass.status == PassStatus.ACTIVE,
        )
        .order_by(Coupon.id)
        .limit(1)
    ).first()
    if existing is not None:
        coupon, pass_row = existing
        created = False
    else:
        # Refused (CouponExpired, OfferCapReached) when the offer cannot be used.
        coupon, pass_row = issue_coupon(session, context.settings, offer, member_id=member.id)
        created = True
    return {
        "member_id": member.id,
        "offer": offer.slug,
        "coupon_id": coupon.id,
        "created": created,
        "pass_serial": pass_row.serial,
        "pass_url": _pass_url(context.settings, pass_row),
    }


def _pass_url(settings: Settings, pass_row: Pass) -> str:
    return f"{settings.public_url.rstrip('/')}/p/{pass_row.serial}"


def _date(value: str, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise errors.ValidationFailed(
            f"{value!r} is not a date", errors=[{"field": where, "message": "not a valid date"}]
        ) from None


def _datetime(value: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise errors.ValidationFailed(
            f"{value!r} is not a date-time with an offset",
            errors=[{"field": where, "message": "not an RFC 3339 date-time"}],
        )
    return moment.astimezone(UTC)


HANDLERS: dict[str, Callable[[_Context, dict[str, Any]], dict[str, Any]]] = {
    "member.upsert": _member_upsert,
    "purchase": _purchase,
    "refund": _refund,
    "points.adjust": _points_adjust,
    "member.tag": _member_tag,
    "offer.assign": _offer_assign,
    "membership.payment": _membership_payment,
}
