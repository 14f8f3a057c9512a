"""The ledger: every change to a member's balance is an entry; the balance follows it.

Every operation that posts to a member (here, and purchases', rewards' and memberships')
takes the member's row lock first (``FOR UPDATE`` on PostgreSQL; SQLite's writers are
already serialized), so concurrent scans of one card are applied one after the other: a
receipt sent 50 times in parallel finds its own earlier entry, and 20 redemptions against
a balance that covers 3 see the real balance.
Idempotency keys are unique per merchant in the database as a last line of defence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    bindparam,
    column,
    exists,
    func,
    select,
    text,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.attributes import set_committed_value

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.driversql import DriverStatement
from walletpass.events import emit
from walletpass.loyalty import earning
from walletpass.loyalty.amounts import check_money
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.passes.changes import PassBump, bump_statement, mark_changed
from walletpass.passes.models import Pass, PassStatus
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


def lock_member(session: Session, member_id: int) -> Member:
    """The member's row, locked until the end of the transaction (FOR UPDATE on
    PostgreSQL; SQLite's writers are serialized already). Locking twice in one
    transaction reads the row once: the lock and the refreshed object are still held."""
    locked: dict[int, Member] = session.info.setdefault(_LOCKED, {})
    if member_id in locked:
        return locked[member_id]
    # FOR UPDATE on PostgreSQL; SQLite renders none (its writers are serialized already).
    query = select(Member).where(Member.id == member_id).with_for_update()
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
    "lifetime_spend = members.lifetime_spend + :spend, "
    # NULL for an entry that is not the customer's doing (see ACTIVITY_KINDS).
    "last_activity_at = COALESCE(:activity_at, members.last_activity_at)"
)
_BALANCES_RETURNED = "members.points_balance, members.stamps_balance, members.lifetime_spend"
_MONEY = bindparam("spend", type_=_MEMBERS.c.lifetime_spend.type)
_ACTIVITY_AT = bindparam("activity_at", type_=_MEMBERS.c.last_activity_at.type)
_MOVE_BALANCES = text(
    f"UPDATE members SET {_BALANCES_SET} WHERE members.id = :for_member "  # noqa: S608
    f"RETURNING {_BALANCES_RETURNED}"
).bindparams(_ACTIVITY_AT, _MONEY)
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
_POST_PG = DriverStatement(
    text(f"{_WITH_ENTRY_SQL} {_MOVE_AFTER_ENTRY_SQL}")
    .bindparams(*_ENTRY_TYPES, _MONEY, _ACTIVITY_AT)
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
    .bindparams(*(b for b in _ENTRY_TYPES if b.key in ("points", "stamps")), _MONEY, _ACTIVITY_AT)
    .columns(*_POST_COLUMNS)
    .cte("moved")
)
_PASSES = Pass.__table__
_BUMP = bump_statement(
    (_PASSES.c.member_id == bindparam("for_member"))
    & (_PASSES.c.status == PassStatus.ACTIVE.value)
    & exists(select(_ENTRY_CTE.c.id))
)
_POST_AND_BUMP_PG = DriverStatement(
    select(*_MOVED_CTE.c, *_BUMP.bumped.c)
    .select_from(_MOVED_CTE.outerjoin(_BUMP.bumped, true()))
    # In this order: each one's SQL names the ones before it.
    .add_cte(_ENTRY_CTE, _MOVED_CTE, _BUMP.pushed)
)


def replay_for(session: Session, key: str, member: Member) -> Entry | None:
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


# What the customer does: a purchase or stamps (earn), a redemption, a refund, a
# membership's payment. Not what the shop or the system does for them: a bonus (welcome,
# birthday, referral), an expiry, a manual adjustment, an undo of a mistake. Only the
# customer's activity renews a rolling balance or tells that a customer is still coming.
ACTIVITY_KINDS = frozenset({"earn", "redeem", "refund", "renewal"})


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
    activity: bool | None = None,
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
    :param activity: whether the entry is the customer's doing, which sets the member's
        ``last_activity_at`` (what renews a rolling balance and tells a lapsed customer);
        by default, if its kind is one of :data:`ACTIVITY_KINDS`.
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
    if activity is None:
        activity = kind in ACTIVITY_KINDS
    balances = {
        "for_member": member.id,
        "spend": spend or Decimal(0),
        "activity_at": now if activity else None,
    }
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        row: Row[Any] | None
        if refresh_passes is not None:
            params = values | balances | PassBump.params(now)
            rows = _POST_AND_BUMP_PG.rows(conn, params)
            if not rows:
                return None
            row = rows[0]
            bumped = [r for r in rows if r.id is not None]
            mark_changed(session, refresh_passes, bumped=bumped)
        else:
            found = _POST_PG.rows(conn, values | balances)
            if not found:
                return None
            row = found[0]
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
    if activity:
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


# --- refunds ----------------------------------------------------------------------------


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
    redemption record being lost (an undo of the purchase does the same).

    A purchase is reversed at most once in total: the refunds in force (not undone) and
    this one add up to its amount at most, and an undone purchase has nothing left to
    refund (:func:`undo_entry` reverses only what its refunds left).
    """
    member = lock_member(session, member.id)
    merchant = session.get(Merchant, member.merchant_id)
    assert merchant is not None
    check_money(amount, merchant.currency, "body.amount")
    original, _ = entry_in_force(session, member.merchant_id, f"purchase:{receipt_id}")
    if original is None or original.member_id != member.id:
        raise errors.UnknownReceipt(f"no purchase with receipt id {receipt_id!r} on this card")
    original_id = original.id
    # A refund undone, or one of an earlier purchase under this receipt that was undone,
    # is not this refund's retry: a new one is written under the next free key.
    previous, key = entry_in_force(
        session,
        member.merchant_id,
        f"refund:{receipt_id}:{refund_id or amount}",
        belongs=lambda e: e.reverses_id == original_id,
    )
    if previous is not None:
        return Change(
            points=previous.points, stamps=previous.stamps, entries=[previous.id], replayed=True
        )
    if amount <= 0:
        raise errors.ValidationFailed("refund amount must be positive")
    refunds = _refunds_in_force(session, original)
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


# --- undo: a reversal that frees the operation's key ------------------------------------

UNDO = "undo"


def generation_key(key: str, generation: int) -> str:
    """The key of the ``generation``-th entry of an operation whose earlier ones were
    undone: ``purchase:R``, then ``purchase#2:R``, ``purchase#3:R``... The operation's name
    ends at the first ``:`` and holds no ``#``, so no receipt id can make one key read as
    another."""
    if generation == 1:
        return key
    name, _, rest = key.partition(":")
    return f"{name}#{generation}:{rest}"


def free_key(session: Session, merchant_id: int, key: str) -> str:
    """The first of ``key``'s generations (:func:`generation_key`) no entry was written
    under: for an operation that may happen again to the same thing (points given back
    to a lot that had expired, then expiring again)."""
    generation = 1
    while find_entry(session, merchant_id, generation_key(key, generation)) is not None:
        generation += 1
    return generation_key(key, generation)


def entry_in_force(
    session: Session,
    merchant_id: int,
    key: str,
    *,
    belongs: Callable[[Entry], bool] | None = None,
) -> tuple[Entry | None, str]:
    """The entry written under ``key`` that is in force: the first of the key's
    generations (:func:`generation_key`) that was not undone and, if ``belongs`` is
    given, that it accepts; else None and the first free key, for a new entry.

    An undone purchase leaves its receipt id free: the same receipt posted again is a
    new purchase, under the next generation's key, and a retry of it finds it here. Only
    operations meeting a taken key ask (one lookup per generation); a first posting does
    not.
    """
    generation = 1
    while True:
        candidate = generation_key(key, generation)
        found = find_entry(session, merchant_id, candidate)
        if found is None:
            return None, candidate
        if not is_undone(session, found) and (belongs is None or belongs(found)):
            return found, candidate
        generation += 1


def is_undone(session: Session, entry: Entry | LedgerEntry) -> bool:
    """Whether an undo reversed ``entry``."""
    return bool(session.scalar(select(_undo_of(entry.member_id, entry.id).exists())))


def _undo_of(
    member_id: int, reversed_id: int | ColumnElement[int] | InstrumentedAttribute[int]
) -> Select[Any]:
    """The member's undo entries reversing the entry ``reversed_id`` (an id, or a column
    of the enclosing query)."""
    return select(_UNDOING.c.id).where(
        _UNDOING.c.member_id == member_id,
        _UNDOING.c.kind == UNDO,
        _UNDOING.c.reverses_id == reversed_id,
    )


_UNDOING = _ENTRIES.alias("undoing")


def in_force(member_id: int) -> ColumnElement[bool]:
    """A condition on :class:`LedgerEntry` (the member's): the entry was not undone."""
    return ~_undo_of(member_id, LedgerEntry.id).correlate(LedgerEntry).exists()


def _refunds_in_force(session: Session, purchase: Entry | LedgerEntry) -> Sequence[LedgerEntry]:
    """The refunds of ``purchase`` that were not undone."""
    return session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.member_id == purchase.member_id,
            LedgerEntry.reverses_id == purchase.id,
            LedgerEntry.kind == "refund",
            in_force(purchase.member_id),
        )
    ).all()


def undo_entry(
    session: Session, member: Member, entry_id: int, *, actor: Actor, reason: str
) -> Entry:
    """Reverse one entry of a scan made by mistake with an undo entry (the ledger stays
    append-only; caller holds the member's lock), keyed on the entry: once.

    A purchase is reversed at most once in total, whichever way: its undo takes back only
    what its refunds in force left (points, stamps and spend), and undoes it, so that
    its receipt may be posted again as new. A refund's undo gives back its points and
    spend, unless its purchase was undone since (that would give back a purchase that no
    longer exists). Points already spent stay spent, as with a refund: the balance may go
    below zero.

    :raise errors.UndoExpired: a refund of a purchase undone since.
    """
    entry = session.get(LedgerEntry, entry_id)
    assert entry is not None
    points, stamps, amount = entry.points, entry.stamps, entry.amount
    spend: Decimal | None = None
    if entry.kind == "earn" and entry.amount is not None:
        refunds = _refunds_in_force(session, entry)
        points += sum(r.points for r in refunds)
        stamps += sum(r.stamps for r in refunds)
        amount = entry.amount - sum((r.amount or Decimal(0) for r in refunds), Decimal(0))
        spend = -amount
    elif entry.kind == "refund":
        purchase = session.get(LedgerEntry, entry.reverses_id) if entry.reverses_id else None
        if purchase is not None and is_undone(session, purchase):
            raise errors.UndoExpired(
                f"the purchase this refund was for (receipt {entry.receipt_id}) was undone "
                "since: there is nothing left to give back"
            )
        spend = entry.amount
    return post(
        session,
        member,
        kind=UNDO,
        key=f"undo:{entry.id}",
        actor=actor,
        points=-points,
        stamps=-stamps,
        reverses_id=entry.id,
        amount=amount,
        receipt_id=entry.receipt_id,
        reason=reason,
        spend=spend,
    )


# --- adjustments ------------------------------------------------------------------------


def adjust(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    points: int,
    reason: str,
    key: str,
    actor: Actor,
    opening_balance: bool = False,
) -> Change:
    """A manual correction by staff or the CRM, with its reason.

    It may not take the balance below zero: no program rule allows a negative balance,
    which only a refund or undo of points already spent can leave (the purchase is
    reversed rather than the redemption). A correction that would is refused, and an
    adjustment adding points is always accepted.

    :param opening_balance: the balance a member imported from another system held
        there, which may be below zero for the same reason (and an exported member's
        negative balance imports again as it was).
    """
    member = lock_member(session, member.id)
    previous = replay_for(session, key, member)
    if previous is not None:
        return Change(points=previous.points, entries=[previous.id], replayed=True)
    if not reason.strip():
        raise errors.ValidationFailed("an adjustment needs a reason")
    if points == 0:
        raise errors.ValidationFailed("an adjustment of 0 points changes nothing")
    if points < 0 and member.points_balance + points < 0 and not opening_balance:
        raise errors.ValidationFailed(
            f"the balance is {member.points_balance} points: removing {-points} would take "
            "it below zero",
            errors=[{"field": "points", "message": "more than the balance"}],
        )
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
