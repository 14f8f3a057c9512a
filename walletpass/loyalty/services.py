"""The ledger: every change to a member's balance is an entry; the balance follows it.

Every mutating function here takes the member's row lock first (``FOR UPDATE`` on
PostgreSQL; SQLite's writers are already serialized), so concurrent scans of one card
are applied one after the other: a receipt sent 50 times in parallel finds its own
earlier entry, and 20 redemptions against a balance that covers 3 see the real balance.
Idempotency keys are unique per merchant in the database as a last line of defence.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    bindparam,
    column,
    exists,
    func,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.loyalty import earning, expiry, rules, tiers
from walletpass.loyalty.models import (
    LedgerEntry,
    Member,
    Program,
    ProgramKind,
    Reward,
    RewardKind,
    RewardRedemption,
)
from walletpass.passes import codes
from walletpass.passes.changes import PassBump, bump_statement, mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import issue_pass
from walletpass.tenancy.models import Merchant


@dataclass(frozen=True)
class Actor:
    """Who caused a change: staff (user id), an API key, a CRM source, or the system."""

    type: str
    id: str | None = None
    store_id: int | None = None


SYSTEM = Actor("system")


@dataclass
class Change:
    """What one operation did, for the scan answer and the webhooks."""

    points: int = 0
    stamps: int = 0
    entries: list[int] = field(default_factory=list)
    rewards_reached: list[str] = field(default_factory=list)
    tier_before: str | None = None
    tier_after: str | None = None
    discount: Decimal | None = None
    redemption_code: str | None = None
    rolled_over_to: int | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger entry as written or found. A value, not a live row: entries are never
    changed once written, and building an ORM object for each cost a fifth of a posting."""

    id: int
    merchant_id: int
    member_id: int
    kind: str
    points: int
    stamps: int
    amount: Decimal | None
    currency: str | None
    reason: str
    actor_type: str
    actor_id: str | None
    idempotency_key: str
    receipt_id: str | None
    store_id: int | None
    reverses_id: int | None
    expires_at: datetime | None
    details: dict[str, Any]
    created_at: datetime


_RULES_CACHE: dict[tuple[str, str], rules.ProgramRules] = {}


def program_rules(program: Program) -> rules.ProgramRules:
    """The program's parsed rules. Parsed models are immutable, so a parse is shared by
    every request that sees the same rules (the till calls this several times a scan)."""
    key = (program.kind, json.dumps(program.rules, sort_keys=True))
    parsed = _RULES_CACHE.get(key)
    if parsed is None:
        parsed = rules.validate_rules(program.kind, program.rules)
        if len(_RULES_CACHE) > 1000:
            _RULES_CACHE.clear()
        _RULES_CACHE[key] = parsed
    return parsed


def lock_member(session: Session, member_id: int) -> Member:
    """The member's row, locked until the end of the transaction (FOR UPDATE on
    PostgreSQL; SQLite's writers are serialized already). Locking twice in one
    transaction reads the row once: the lock and the refreshed object are still held."""
    locked: dict[int, Member] = session.info.setdefault(_LOCKED, {})
    if member_id in locked:
        return locked[member_id]
    query = select(Member).where(Member.id == member_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    member = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if member is None:
        raise errors.NotFound(f"no member {member_id}")
    locked[member_id] = member
    return member


def note_locked(session: Session, member: Member) -> None:
    """Tell :func:`lock_member` that the caller's own query locked (and refreshed) this
    member's row, so it is not read a second time."""
    session.info.setdefault(_LOCKED, {})[member.id] = member


_LOCKED = "walletpass_locked_members"


def find_entry(session: Session, merchant_id: int, idempotency_key: str) -> Entry | None:
    """The entry written under ``idempotency_key`` (unique per merchant)."""
    row = (
        session.connection()
        .execute(_FIND_ENTRY, {"merchant_id": merchant_id, "key": idempotency_key})
        .one_or_none()
    )
    return Entry(**row._mapping) if row is not None else None


# The hot path's statements are built once: SQLAlchemy then reuses their cache keys and
# compiled forms instead of constructing and hashing them on every scan. Each is scoped
# to its merchant explicitly (Core statements do not get the session's tenant filter).
_ENTRIES = LedgerEntry.__table__
_MEMBERS = Member.__table__
_FIND_ENTRY = select(_ENTRIES).where(
    _ENTRIES.c.merchant_id == bindparam("merchant_id"),
    _ENTRIES.c.idempotency_key == bindparam("key"),
)
_ENTRY_COLUMNS = [c.name for c in _ENTRIES.c if c.name != "id"]
_ENTRY_TYPES = [bindparam(name, type_=_ENTRIES.c[name].type) for name in _ENTRY_COLUMNS]
# The ledger's unique key: a second entry under it is a retry, written once.
_ON_KEY_TAKEN = "ON CONFLICT (merchant_id, idempotency_key) DO NOTHING"
_INSERT_ENTRY_SQL = (
    f"INSERT INTO ledger_entries ({', '.join(_ENTRY_COLUMNS)}) "  # noqa: S608 - names only
    f"VALUES ({', '.join(':' + name for name in _ENTRY_COLUMNS)}) {_ON_KEY_TAKEN}"
)
_INSERT_ENTRY = text(f"{_INSERT_ENTRY_SQL} RETURNING id").bindparams(*_ENTRY_TYPES)
_BALANCES_SET = (
    "points_balance = members.points_balance + :points, "
    "stamps_balance = members.stamps_balance + :stamps, "
    "lifetime_spend = members.lifetime_spend + :spend, last_activity_at = :created_at"
)
_BALANCES_RETURNED = "members.points_balance, members.stamps_balance, members.lifetime_spend"
_MONEY = bindparam("spend", type_=_MEMBERS.c.lifetime_spend.type)
_MOVE_BALANCES = text(
    f"UPDATE members SET {_BALANCES_SET} WHERE members.id = :for_member "  # noqa: S608
    f"RETURNING {_BALANCES_RETURNED}"
).bindparams(bindparam("created_at", type_=_ENTRIES.c.created_at.type), _MONEY)
_POST_COLUMNS = (
    column("entry_id", BigInteger),
    _MEMBERS.c.points_balance,
    _MEMBERS.c.stamps_balance,
    _MEMBERS.c.lifetime_spend,
)
# PostgreSQL, after a WITH entry AS (<insert> RETURNING id): the member's balances move
# only if the entry was written (no entry, the key was taken: no member row, no result).
_WITH_ENTRY_SQL = f"WITH entry AS ({_INSERT_ENTRY_SQL} RETURNING id)"
_MOVE_AFTER_ENTRY_SQL = (
    f"UPDATE members SET {_BALANCES_SET} FROM entry WHERE members.id = :for_member "  # noqa: S608
    f"RETURNING entry.id AS entry_id, {_BALANCES_RETURNED}"
)
# PostgreSQL: both in one round trip.
_POST_PG = (
    text(f"{_WITH_ENTRY_SQL} {_MOVE_AFTER_ENTRY_SQL}")
    .bindparams(*_ENTRY_TYPES, _MONEY)
    .columns(*_POST_COLUMNS)
)


# PostgreSQL, a purchase's writes in one round trip: the entry, the balances and, only if
# the entry was written, the member's pass bump with its pushes (walletpass.passes's CTEs).
# One row per pass bumped (pass columns NULL if the member has no active pass); no row if
# the key was taken.
_ENTRY_CTE = (
    text(f"{_INSERT_ENTRY_SQL} RETURNING id")
    .bindparams(*_ENTRY_TYPES)
    .columns(column("id", BigInteger))
    .cte("entry")
)
_MOVED_CTE = (
    text(_MOVE_AFTER_ENTRY_SQL)
    .bindparams(*(b for b in _ENTRY_TYPES if b.key in ("points", "stamps", "created_at")), _MONEY)
    .columns(*_POST_COLUMNS)
    .cte("moved")
)
_PASSES = Pass.__table__
_BUMP = bump_statement(
    (_PASSES.c.member_id == bindparam("for_member"))
    & (_PASSES.c.status == PassStatus.ACTIVE.value)
    & exists(select(_ENTRY_CTE.c.id))
)
_POST_AND_BUMP_PG = (
    select(*_MOVED_CTE.c, *_BUMP.bumped.c)
    .select_from(_MOVED_CTE.outerjoin(_BUMP.bumped, true()))
    # In this order: each one's SQL names the ones before it.
    .add_cte(_ENTRY_CTE, _MOVED_CTE, _BUMP.pushed)
)


def _replay_for(session: Session, key: str, member: Member) -> Entry | None:
    """The earlier entry of a retried operation, if it was this member's.

    :raise DuplicateReceipt: the key was used for another card (a till reusing receipt
        ids across customers): refusing beats answering with someone else's entry.
    """
    previous = find_entry(session, member.merchant_id, key)
    if previous is not None and previous.member_id != member.id:
        raise errors.DuplicateReceipt(
            "this receipt id was already used on another card; send a new one"
        )
    return previous


def post(session: Session, member: Member, **entry: Any) -> Entry:
    """Append one entry and move the member's balances with it (caller holds the lock);
    takes :func:`post_once`'s arguments.

    :raise errors.Conflict: the idempotency key is taken. Callers look their key up under
        the member's lock first, so this is a key reused for another member or operation,
        and the whole unit of work is refused.
    """
    posted = post_once(session, member, **entry)
    if posted is None:
        raise errors.Conflict(
            f"idempotency key {entry['key']!r} was already used for another member or operation"
        )
    return posted


def post_once(
    session: Session,
    member: Member,
    *,
    kind: str,
    key: str,
    actor: Actor,
    points: int = 0,
    stamps: int = 0,
    amount: Decimal | None = None,
    currency: str | None = None,
    reason: str = "",
    receipt_id: str | None = None,
    reverses_id: int | None = None,
    expires_at: datetime | None = None,
    details: dict[str, Any] | None = None,
    spend: Decimal | None = None,
    refresh_passes: Settings | None = None,
) -> Entry | None:
    """Append one entry unless its idempotency key is taken, and move the member's
    balances with it (caller holds the lock).

    One statement on PostgreSQL (the INSERT ... ON CONFLICT DO NOTHING and the member's
    UPDATE in one WITH), two on SQLite, not an ORM unit of work: this runs on every till
    scan, and a retried purchase learns it is one here instead of by a lookup first. The
    member's loaded object is given the new balances as its database state, so it reads
    right and the session has nothing left to flush for them.

    :param spend: added to the member's lifetime spend in the same UPDATE (a purchase,
        or a negative one for a refund).
    :param refresh_passes: if given (the settings), and the entry is written, also
        mark the member's passes changed, in the same statement on PostgreSQL.
        Once is enough for a unit of work: wallets see only its committed end state.
    :return: the entry, or None if the key was taken: then nothing was written.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "merchant_id": member.merchant_id,
        "member_id": member.id,
        "kind": kind,
        "points": points,
        "stamps": stamps,
        "amount": amount,
        "currency": currency,
        "reason": reason,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "idempotency_key": key,
        "receipt_id": receipt_id,
        "store_id": actor.store_id,
        "reverses_id": reverses_id,
        "expires_at": expires_at,
        "details": details or {},
        "created_at": now,
    }
    balances = {"for_member": member.id, "spend": spend or Decimal(0)}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        row: Row[Any] | None
        if refresh_passes is not None:
            params = values | balances | PassBump.params(now)
            rows = conn.execute(_POST_AND_BUMP_PG, params).all()
            if not rows:
                return None
            row = rows[0]
            bumped = [r for r in rows if r.id is not None]
            mark_changed(session, refresh_passes, bumped=bumped)
        else:
            row = conn.execute(_POST_PG, values | balances).one_or_none()
            if row is None:
                return None
        entry_id = row.entry_id
    else:
        entry_id = conn.execute(_INSERT_ENTRY, values).scalar()
        if entry_id is None:
            return None
        row = conn.execute(_MOVE_BALANCES, values | balances).one()
        if refresh_passes is not None:
            mark_changed(session, refresh_passes, member_id=member.id)
    set_committed_value(member, "points_balance", row.points_balance)
    set_committed_value(member, "stamps_balance", row.stamps_balance)
    set_committed_value(member, "lifetime_spend", row.lifetime_spend)
    set_committed_value(member, "last_activity_at", now)
    entry = Entry(id=entry_id, **values)
    if points or stamps:
        emit(
            session,
            member.merchant_id,
            "points.changed",
            {
                "member_id": member.id,
                "external_id": member.external_id,
                "entry_id": entry_id,
                "kind": kind,
                "points": points,
                "stamps": stamps,
                "points_balance": member.points_balance,
                "stamps_balance": member.stamps_balance,
                "receipt_id": receipt_id,
                "reason": reason,
            },
        )
    return entry


def member_passes(session: Session, member_id: int) -> list[Pass]:
    return list(
        session.scalars(
            select(Pass).where(Pass.member_id == member_id, Pass.status == PassStatus.ACTIVE)
        )
    )


def merchant_now(session: Session, merchant_id: int, now: datetime | None = None) -> datetime:
    merchant = session.get(Merchant, merchant_id)
    tz = ZoneInfo(merchant.timezone if merchant else "UTC")
    return (now or utcnow()).astimezone(tz)


# --- enrollment --------------------------------------------------------------------------


def enroll(
    session: Session,
    settings: Settings,
    program: Program,
    *,
    name: str = "",
    email: str | None = None,
    phone: str | None = None,
    birthday: date | None = None,
    language: str = "en",
    marketing_consent: bool = False,
    external_id: str | None = None,
    referral_code: str | None = None,
    source: str | None = None,
    actor: Actor = SYSTEM,
) -> tuple[Member, Pass, bool]:
    """Create a member with a pass, or return the existing one for the same email or
    external id (a double submit or a CRM retry creates nobody twice).

    :return: (member, pass, created)
    """
    existing = None
    if external_id:
        existing = session.scalars(
            select(Member).where(Member.external_id == external_id)
        ).one_or_none()
    if existing is None and email:
        existing = session.scalars(
            select(Member).where(
                Member.program_id == program.id, func.lower(Member.email) == email.lower()
            )
        ).first()
    if existing is not None:
        passes = member_passes(session, existing.id)
        if passes:
            return existing, passes[0], False
        return existing, _issue_member_pass(session, settings, program, existing), False
    referrer = None
    if referral_code:
        referrer = session.scalars(
            select(Member).where(Member.referral_code == referral_code.strip().upper())
        ).one_or_none()
    member = Member(
        merchant_id=program.merchant_id,
        program_id=program.id,
        external_id=external_id,
        name=name,
        email=email.strip().lower() if email else None,
        phone=phone,
        birthday=birthday,
        language=language if language in ("en", "zh-Hant") else "en",
        marketing_consent=marketing_consent,
        referral_code=codes.new_referral_code(),
        referred_by_id=referrer.id if referrer else None,
        source=source,
        tags={},
    )
    session.add(member)
    session.flush()
    pass_row = _issue_member_pass(session, settings, program, member)
    parsed = program_rules(program)
    if program.kind == ProgramKind.MEMBERSHIP:
        assert isinstance(parsed, rules.MembershipRules)
        member.membership_valid_until = expiry.add_months(utcnow(), parsed.validity_months)
    if isinstance(parsed, rules.PointsRules | rules.StampsRules):
        bonus = earning.welcome_bonus(parsed)
        if bonus:
            is_stamps = isinstance(parsed, rules.StampsRules)
            post(
                session,
                member,
                kind="bonus",
                key=f"welcome:{member.id}",
                actor=actor,
                points=0 if is_stamps else bonus,
                stamps=bonus if is_stamps else 0,
                reason="welcome bonus",
                expires_at=None
                if is_stamps
                else expiry.expires_at_for_earn(parsed.expiry, utcnow()),
            )
    if isinstance(parsed, rules.PointsRules):
        _initial_tier(member, parsed)
    emit(
        session,
        member.merchant_id,
        "member.created",
        {
            "member_id": member.id,
            "external_id": member.external_id,
            "program": program.slug,
            "name": member.name,
            "email": member.email,
            "pass_serial": pass_row.serial,
            "source": member.source,
        },
    )
    return member, pass_row, True


def _issue_member_pass(
    session: Session, settings: Settings, program: Program, member: Member
) -> Pass:
    return issue_pass(
        session,
        settings,
        merchant_id=program.merchant_id,
        template=program.template,
        program_id=program.id,
        member_id=member.id,
    )


def _initial_tier(member: Member, parsed: rules.PointsRules) -> None:
    if isinstance(parsed, rules.TiersRules):
        level = tiers.tier_for_spend(parsed, member.lifetime_spend)
        member.tier = level.name if level else None


# --- purchases, stamps ---------------------------------------------------------------------


def record_purchase(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    amount: Decimal,
    receipt_id: str,
    actor: Actor,
    currency: str | None = None,
    lines: list[earning.Line] | None = None,
    redeem_points: int = 0,
    at: datetime | None = None,
) -> Change:
    """A purchase at the till or from the CRM: earn points or stamps, optionally paying
    part of it with points. Idempotent on ``receipt_id``."""
    member = lock_member(session, member.id)
    program = session.get(Program, member.program_id)
    assert program is not None
    key = f"purchase:{receipt_id}"
    if redeem_points:
        # Paying with points writes its own entry first: a retry must be caught before it.
        previous = find_entry(session, member.merchant_id, key)
        if previous is not None:
            return _replay_purchase(session, member, previous, amount, receipt_id)
    if program.kind in (ProgramKind.OFFERS, ProgramKind.MEMBERSHIP):
        raise errors.ActionNotAllowed(f"a {program.kind} program has no balance to earn into")
    if amount < 0:
        raise errors.ValidationFailed("amount must not be negative")
    parsed = program_rules(program)
    at = at or utcnow()
    change = Change(tier_before=member.tier)
    # Only a referred member's first purchase pays a referral bonus: skip the count otherwise.
    first_purchase = bool(member.referred_by_id) and _is_first_purchase(session, member.id)
    paid = amount
    if redeem_points:
        paid = _pay_with_points(
            session, member, parsed, amount, redeem_points, receipt_id, actor, change
        )
    merchant = session.get(Merchant, member.merchant_id)
    assert merchant is not None
    stamps_before = member.stamps_balance
    earned: dict[str, Any]
    if isinstance(parsed, rules.StampsRules):
        earned = {"stamps": earning.stamps_for_visit(parsed, amount=paid)}
    else:
        assert isinstance(parsed, rules.PointsRules)
        tier_multiplier = Decimal(1)
        if isinstance(parsed, rules.TiersRules) and member.tier:
            tier_multiplier = tiers.earn_multiplier_for(parsed, member.tier)
        result = earning.points_for_purchase(
            parsed,
            amount=paid,
            lines=lines,
            at=at,
            tz=merchant.timezone,
            tier_multiplier=tier_multiplier,
        )
        earned = {
            "points": result.points,
            "details": {
                "paid": str(paid),
                "multiplier": str(result.multiplier),
                "applied": result.applied,
            },
        }
    # Written only if the receipt is new: a retried purchase (the till's network dropped
    # the answer) finds its first entry here and changes nothing.
    entry = post_once(
        session,
        member,
        kind="earn",
        key=key,
        actor=actor,
        amount=amount,
        currency=currency or merchant.currency,
        receipt_id=receipt_id,
        reason="purchase",
        expires_at=expiry.expires_at_for_earn(parsed.expiry, at),
        spend=amount,
        # The member's passes change with it (this unit of work's one bump and push).
        refresh_passes=settings,
        **earned,
    )
    if entry is None:
        previous = find_entry(session, member.merchant_id, key)
        assert previous is not None
        return _replay_purchase(session, member, previous, amount, receipt_id)
    change.points += entry.points
    change.stamps += entry.stamps
    if isinstance(parsed, rules.StampsRules):
        change.rewards_reached = earning.stamp_rewards_reached(
            parsed, stamps_before, member.stamps_balance
        )
    change.entries.append(entry.id)
    if isinstance(parsed, rules.TiersRules):
        _review_tier_upgrade(session, member, parsed)
    if first_purchase and member.referred_by_id and isinstance(parsed, rules.PointsRules):
        _pay_referral(session, settings, member, parsed)
    change.tier_after = member.tier
    return change


def _replay_purchase(
    session: Session, member: Member, previous: Entry, amount: Decimal, receipt_id: str
) -> Change:
    """The answer to a retried purchase: what the first one did, if it was the same."""
    if previous.member_id != member.id or previous.amount != amount:
        raise errors.DuplicateReceipt(
            f"receipt {receipt_id!r} was already recorded with a different amount or card"
        )
    return _replayed_change(session, receipt_id)


def _replayed_change(session: Session, receipt_id: str) -> Change:
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.receipt_id == receipt_id).order_by(LedgerEntry.id)
    ).all()
    change = Change(replayed=True)
    for entry in entries:
        if entry.kind in ("earn", "redeem"):
            change.points += entry.points
            change.stamps += entry.stamps
            change.entries.append(entry.id)
            if entry.kind == "redeem" and entry.details.get("discount"):
                change.discount = Decimal(entry.details["discount"])
    return change


def _is_first_purchase(session: Session, member_id: int) -> bool:
    return not session.scalar(
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.member_id == member_id, LedgerEntry.kind == "earn")
    )


def _pay_with_points(
    session: Session,
    member: Member,
    parsed: rules.ProgramRules,
    amount: Decimal,
    points: int,
    receipt_id: str,
    actor: Actor,
    change: Change,
) -> Decimal:
    if not isinstance(parsed, rules.PointsRules):
        raise errors.ActionNotAllowed("only points programs can pay with points")
    if points < 0:
        raise errors.ValidationFailed("redeem_points must not be negative")
    if points > member.points_balance:
        raise errors.InsufficientPoints(
            f"{points} points asked, {member.points_balance} available",
            balance=member.points_balance,
        )
    try:
        allowed = earning.max_points_for_purchase(parsed, amount, balance=member.points_balance)
        discount = earning.discount_for_points(parsed, points)
    except earning.RedemptionNotAllowed as exc:
        raise errors.ActionNotAllowed(str(exc)) from None
    if points > allowed:
        raise errors.ActionNotAllowed(
            f"at most {allowed} points can pay for this purchase", max_points=allowed
        )
    entry = post(
        session,
        member,
        kind="redeem",
        key=f"pay:{receipt_id}",
        actor=actor,
        points=-points,
        amount=discount,
        receipt_id=receipt_id,
        reason=f"{points} points paid {discount} of the purchase",
        details={"discount": str(discount)},
    )
    change.points -= points
    change.discount = discount
    change.entries.append(entry.id)
    return amount - discount


def _review_tier_upgrade(session: Session, member: Member, parsed: rules.TiersRules) -> None:
    spend = qualifying_spend(session, member, parsed)
    level = tiers.tier_after_review(parsed, member.tier, spend, utcnow(), None)
    if level is not None and level.name != member.tier:
        member.tier = level.name


def qualifying_spend(session: Session, member: Member, parsed: rules.TiersRules) -> Decimal:
    if isinstance(parsed.window, rules.LifetimeWindow):
        return member.lifetime_spend or Decimal(0)
    rows = session.execute(
        select(LedgerEntry.created_at, LedgerEntry.amount, LedgerEntry.kind).where(
            LedgerEntry.member_id == member.id, LedgerEntry.kind.in_(("earn", "refund"))
        )
    ).all()
    entries = [(at, -amt if kind == "refund" else amt) for at, amt, kind in rows if amt is not None]
    return tiers.qualifying_spend(entries, parsed.window, utcnow())


def _pay_referral(
    session: Session, settings: Settings, member: Member, parsed: rules.PointsRules
) -> None:
    referrer_points, referee_points = earning.referral_bonuses(parsed, first_purchase=True)
    now = utcnow()
    if referee_points:
        post(
            session,
            member,
            kind="bonus",
            key=f"referral-referee:{member.id}",
            actor=SYSTEM,
            points=referee_points,
            reason="referral bonus (welcome from a friend)",
            expires_at=expiry.expires_at_for_earn(parsed.expiry, now),
        )
    if referrer_points and member.referred_by_id:
        referrer = lock_member(session, member.referred_by_id)
        post(
            session,
            referrer,
            kind="bonus",
            key=f"referral-referrer:{member.id}",
            actor=SYSTEM,
            points=referrer_points,
            reason=f"referral bonus: {member.name or 'a friend'} made a first purchase",
            expires_at=expiry.expires_at_for_earn(parsed.expiry, now),
        )
        mark_changed(session, settings, member_id=referrer.id)


def add_stamps(
    session: Session, settings: Settings, member: Member, *, count: int, key: str, actor: Actor
) -> Change:
    """Stamps given by hand at the till (no purchase amount)."""
    member = lock_member(session, member.id)
    program = session.get(Program, member.program_id)
    assert program is not None
    if program.kind != ProgramKind.STAMPS:
        raise errors.ActionNotAllowed("stamps only apply to a stamp card")
    if not 1 <= count <= 50:
        raise errors.ValidationFailed("stamps must be between 1 and 50")
    previous = _replay_for(session, key, member)
    if previous is not None:
        return Change(stamps=previous.stamps, entries=[previous.id], replayed=True)
    parsed = program_rules(program)
    assert isinstance(parsed, rules.StampsRules)
    before = member.stamps_balance
    entry = post(
        session,
        member,
        kind="earn",
        key=key,
        actor=actor,
        stamps=count,
        reason="stamp",
        expires_at=expiry.expires_at_for_earn(parsed.expiry, utcnow()),
    )
    change = Change(stamps=count, entries=[entry.id])
    change.rewards_reached = earning.stamp_rewards_reached(parsed, before, member.stamps_balance)
    mark_changed(session, settings, member_id=member.id)
    return change


# --- rewards ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogueReward:
    """A reward as the catalogue lists it for a member: read with Core (every till scan
    answers with what is redeemable), not loaded as a live row."""

    id: int
    name: str
    kind: str
    cost_points: int
    min_tier: str | None
    stock: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool


_REWARDS = Reward.__table__
# In CatalogueReward's field order, so a row builds one positionally.
CATALOGUE_COLUMNS = tuple(_REWARDS.c[f.name] for f in fields(CatalogueReward))


def active_catalogue(program_id: Any, merchant_id: Any) -> ColumnElement[bool]:
    """The condition for a program's active rewards, scoped to its merchant explicitly
    (Core statements do not get the session's tenant filter)."""
    return (
        (_REWARDS.c.program_id == program_id)
        & (_REWARDS.c.merchant_id == merchant_id)
        & _REWARDS.c.active.is_(True)
    )


# Built once: every scan answers with what is redeemable now.
_ACTIVE_REWARDS = (
    select(*CATALOGUE_COLUMNS)
    .where(active_catalogue(bindparam("program_id"), bindparam("merchant_id")))
    .order_by(_REWARDS.c.cost_points)
)


def catalogue_rows(session: Session, member: Member) -> Sequence[Row[Any]]:
    """The member's program's active rewards, cheapest first, as CATALOGUE_COLUMNS rows.
    Flushes first, so a reward redeemed in this unit of work shows its new stock."""
    session.flush()
    return (
        session.connection()
        .execute(
            _ACTIVE_REWARDS, {"program_id": member.program_id, "merchant_id": member.merchant_id}
        )
        .all()
    )


def redeemable_rewards(
    session: Session, member: Member, now: datetime | None = None
) -> list[CatalogueReward]:
    """Rewards this member could redeem right now (balance, tier, stock, dates)."""
    return redeemable_among(session, member, catalogue_rows(session, member), now)


def redeemable_among(
    session: Session,
    member: Member,
    rows: Iterable[Sequence[Any]],
    now: datetime | None = None,
) -> list[CatalogueReward]:
    """The rewards of ``rows`` (CATALOGUE_COLUMNS, as :func:`catalogue_rows` reads them)
    this member could redeem right now."""
    now = now or utcnow()
    program = session.get(Program, member.program_id)
    assert program is not None
    found = []
    for row in rows:
        reward = CatalogueReward(*row)
        if _reward_problem(program, member, reward, now) is None:
            found.append(reward)
    return found


def _reward_problem(
    program: Program, member: Member, reward: Reward | CatalogueReward, now: datetime
) -> errors.WalletpassError | None:
    if not reward.active:
        return errors.RewardUnavailable(f"reward {reward.name!r} is not active")
    if reward.valid_from and now < reward.valid_from:
        return errors.RewardUnavailable(
            f"reward {reward.name!r} starts {reward.valid_from:%Y-%m-%d}"
        )
    if reward.valid_until and now > reward.valid_until:
        return errors.RewardUnavailable(
            f"reward {reward.name!r} ended {reward.valid_until:%Y-%m-%d}"
        )
    if reward.stock is not None and reward.stock <= 0:
        return errors.RewardUnavailable(f"reward {reward.name!r} is out of stock")
    if reward.min_tier:
        parsed = program_rules(program)
        if not isinstance(parsed, rules.TiersRules) or not _tier_at_least(
            parsed, member.tier, reward.min_tier
        ):
            return errors.RewardUnavailable(
                f"reward {reward.name!r} needs tier {reward.min_tier} (member is "
                f"{member.tier or 'untiered'})"
            )
    balance = member.stamps_balance if program.kind == ProgramKind.STAMPS else member.points_balance
    if balance < reward.cost_points:
        unit = "stamps" if program.kind == ProgramKind.STAMPS else "points"
        return errors.InsufficientPoints(
            f"{reward.name!r} costs {reward.cost_points} {unit}; balance is {balance}",
            balance=balance,
            cost=reward.cost_points,
        )
    return None


def _tier_at_least(parsed: rules.TiersRules, current: str | None, needed: str) -> bool:
    names = [level.name.casefold() for level in parsed.levels]
    if current is None or current.casefold() not in names or needed.casefold() not in names:
        return False
    return names.index(current.casefold()) >= names.index(needed.casefold())


def redeem_reward(
    session: Session, settings: Settings, member: Member, *, reward_id: int, key: str, actor: Actor
) -> Change:
    """Spend points (or stamps) on a catalogue reward; returns a redemption code."""
    member = lock_member(session, member.id)
    previous = _replay_for(session, key, member)
    if previous is not None:
        code = session.scalar(
            select(RewardRedemption.code).where(RewardRedemption.ledger_entry_id == previous.id)
        )
        return Change(
            points=previous.points,
            stamps=previous.stamps,
            entries=[previous.id],
            redemption_code=code,
            replayed=True,
        )
    program = session.get(Program, member.program_id)
    assert program is not None
    query = select(Reward).where(Reward.id == reward_id, Reward.program_id == member.program_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    reward = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if reward is None:
        raise errors.UnknownReward(f"no reward {reward_id} in this program")
    problem = _reward_problem(program, member, reward, utcnow())
    if problem is not None:
        raise problem
    is_stamps = program.kind == ProgramKind.STAMPS
    reason = (
        f"donated to {reward.cause}"
        if reward.kind == RewardKind.DONATION
        else f"reward: {reward.name}"
    )
    entry = post(
        session,
        member,
        kind="redeem",
        key=key,
        actor=actor,
        points=0 if is_stamps else -reward.cost_points,
        stamps=-reward.cost_points if is_stamps else 0,
        reason=reason,
        details={"reward_id": reward.id},
    )
    if reward.stock is not None:
        reward.stock -= 1
    code = secrets.token_hex(5).upper()
    session.add(
        RewardRedemption(
            merchant_id=member.merchant_id,
            member_id=member.id,
            reward_id=reward.id,
            ledger_entry_id=entry.id,
            code=code,
        )
    )
    emit(
        session,
        member.merchant_id,
        "reward.redeemed",
        {
            "member_id": member.id,
            "external_id": member.external_id,
            "reward_id": reward.id,
            "reward": reward.name,
            "points": entry.points,
            "stamps": entry.stamps,
            "redemption_code": code,
            "entry_id": entry.id,
        },
    )
    mark_changed(session, settings, member_id=member.id)
    return Change(
        points=entry.points, stamps=entry.stamps, entries=[entry.id], redemption_code=code
    )


# --- refunds and adjustments ------------------------------------------------------------


def refund(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    receipt_id: str,
    amount: Decimal,
    refund_id: str | None,
    actor: Actor,
) -> Change:
    """Reverse what ``receipt_id`` earned, pro rata for a partial refund.

    Points already spent stay spent: the balance may go negative rather than the
    redemption record being lost.
    """
    member = lock_member(session, member.id)
    key = f"refund:{receipt_id}:{refund_id or amount}"
    previous = _replay_for(session, key, member)
    if previous is not None:
        return Change(
            points=previous.points, stamps=previous.stamps, entries=[previous.id], replayed=True
        )
    original = find_entry(session, member.merchant_id, f"purchase:{receipt_id}")
    if original is None or original.member_id != member.id:
        raise errors.UnknownReceipt(f"no purchase with receipt id {receipt_id!r} on this card")
    if amount <= 0:
        raise errors.ValidationFailed("refund amount must be positive")
    refunds = session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.reverses_id == original.id, LedgerEntry.kind == "refund"
        )
    ).all()
    already_amount = sum((r.amount or Decimal(0) for r in refunds), Decimal(0))
    original_amount = original.amount or Decimal(0)
    if already_amount + amount > original_amount:
        raise errors.ValidationFailed(
            f"refunds would exceed the purchase: {already_amount} of {original_amount} "
            "already refunded"
        )
    earned = original.points or original.stamps
    already_reversed = -sum(r.points or r.stamps for r in refunds)
    reverse = earning.refund_points(
        earned, original_amount, amount, already_reversed, already_refunded=already_amount
    )
    is_stamps = bool(original.stamps)
    entry = post(
        session,
        member,
        kind="refund",
        key=key,
        actor=actor,
        points=0 if is_stamps else -reverse,
        stamps=-reverse if is_stamps else 0,
        amount=amount,
        currency=original.currency,
        receipt_id=receipt_id,
        reverses_id=original.id,
        reason=f"refund of {amount} on receipt {receipt_id}",
        spend=-amount,
    )
    mark_changed(session, settings, member_id=member.id)
    return Change(points=entry.points, stamps=entry.stamps, entries=[entry.id])


def adjust(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    points: int,
    reason: str,
    key: str,
    actor: Actor,
) -> Change:
    """A manual correction by staff or the CRM, with its reason."""
    member = lock_member(session, member.id)
    previous = _replay_for(session, key, member)
    if previous is not None:
        return Change(points=previous.points, entries=[previous.id], replayed=True)
    if not reason.strip():
        raise errors.ValidationFailed("an adjustment needs a reason")
    if points == 0:
        raise errors.ValidationFailed("an adjustment of 0 points changes nothing")
    entry = post(
        session, member, kind="adjust", key=key, actor=actor, points=points, reason=reason.strip()
    )
    mark_changed(session, settings, member_id=member.id)
    return Change(points=points, entries=[entry.id])


def ledger_balance(session: Session, member_id: int) -> tuple[int, int]:
    """The balances summed from the ledger (the source of truth)."""
    points, stamps = session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.points), 0),
            func.coalesce(func.sum(LedgerEntry.stamps), 0),
        ).where(LedgerEntry.member_id == member_id)
    ).one()
    return int(points), int(stamps)


def today_for(session: Session, merchant_id: int) -> date:
    return merchant_now(session, merchant_id).date()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- memberships ------------------------------------------------------------------------


def renew_membership(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    key: str,
    actor: Actor,
    amount: Decimal | None = None,
    receipt_id: str | None = None,
) -> Change:
    """Extend a club card by the program's validity period, from today or from its
    current end if that is later (renewing early loses nothing). Idempotent on ``key``;
    a paid membership records the payment amount in the ledger entry."""
    member = lock_member(session, member.id)
    program = session.get(Program, member.program_id)
    assert program is not None
    if program.kind != ProgramKind.MEMBERSHIP:
        raise errors.ActionNotAllowed("only a membership card can be renewed")
    previous = _replay_for(session, key, member)
    if previous is not None:
        return Change(entries=[previous.id], replayed=True)
    parsed = program_rules(program)
    assert isinstance(parsed, rules.MembershipRules)
    if parsed.paid and amount is None:
        raise errors.ValidationFailed(
            f"a paid membership needs the amount paid (price {parsed.price})",
            errors=[{"field": "amount", "message": "required for a paid membership"}],
        )
    now = utcnow()
    start = max(now, member.membership_valid_until or now)
    member.membership_valid_until = expiry.add_months(start, parsed.validity_months)
    entry = post(
        session,
        member,
        kind="renewal",
        key=key,
        actor=actor,
        amount=amount,
        receipt_id=receipt_id,
        reason=f"membership renewed until {member.membership_valid_until:%Y-%m-%d}",
    )
    renewed = []
    for pass_row in session.scalars(select(Pass).where(Pass.member_id == member.id)):
        if pass_row.status == PassStatus.EXPIRED:
            pass_row.status = PassStatus.ACTIVE
        renewed.append(pass_row.id)
    mark_changed(session, settings, passes=renewed)
    return Change(entries=[entry.id])
