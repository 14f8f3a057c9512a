"""The till: resolve what was scanned, apply the action, record the scan."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached

from walletpass import errors
from walletpass.config import Settings
from walletpass.crm.outbound import any_active_endpoint, note_no_active_endpoint
from walletpass.db import MERCHANT_PARAMETER, scoped_to_merchant, utcnow
from walletpass.driversql import DriverStatement
from walletpass.events import emit
from walletpass.loyalty import earning, ledger, memberships, purchases, rewards
from walletpass.loyalty.models import Member, Program, ProgramKind, Reward
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import coupon_problem, redeem_coupon
from walletpass.passes import codes
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.scan.models import Scan
from walletpass.tenancy.models import Merchant

ACTIONS = ("lookup", "purchase", "stamp", "redeem_reward", "redeem_coupon", "refund")
UNDO_WINDOW = timedelta(minutes=5)


@dataclass
class ScanRequest:
    code: str
    action: str
    amount: Decimal | None = None
    currency: str | None = None
    receipt_id: str | None = None
    reward_id: int | None = None
    redeem_points: int = 0
    stamps: int = 1
    refund_id: str | None = None
    lines: list[earning.Line] | None = None


@dataclass(frozen=True, slots=True)
class RecordedScan:
    """A scan as :func:`apply_scan` wrote it to the scan log. A value, not a live row:
    an ORM object cost 18 instrumented attribute sets on every scan (undo loads the row)."""

    id: int
    merchant_id: int
    store_id: int | None
    api_key_id: int | None
    user_id: int | None
    pass_id: int | None
    member_id: int | None
    coupon_id: int | None
    action: str
    code: str
    amount: Decimal | None
    currency: str | None
    receipt_id: str | None
    result: str
    error_type: str | None
    points_delta: int
    details: dict[str, Any]
    created_at: datetime
    undone_at: datetime | None


@dataclass
class ScanOutcome:
    scan: RecordedScan
    pass_row: ScannedPass
    member: Member | None
    program: Program | None
    coupon: Coupon | None
    offer: Offer | None
    change: ledger.Change = field(default_factory=ledger.Change)
    redeemable_rewards: list[rewards.CatalogueReward] = field(default_factory=list)
    coupons: list[tuple[Coupon, Offer]] = field(default_factory=list)


def resolve(session: Session, code: str) -> Pass:
    """The pass a scanned code belongs to, within the session's merchant."""
    normalized = codes.normalize_barcode(code)
    pass_row = session.scalars(select(Pass).where(Pass.barcode == normalized)).one_or_none()
    if pass_row is None:
        own = code_of_card_number(session, code)
        if own is not None:
            pass_row = session.scalars(select(Pass).where(Pass.barcode == own)).one_or_none()
    if pass_row is None:
        raise _unknown_code()
    return pass_row


def code_of_card_number(session: Session, scanned: str) -> str | None:
    """The pass code of the member whose card number (``external_id``) was scanned: a card
    whose design puts that number first in an EAN-13, Code 39, Codabar or ITF barcode
    (walletpass.passes.barcodes) is scanned by the number the shop's tills already know.
    Only a member's active card answers; a code of ours is looked up first, as ever."""
    number = scanned.strip()
    if not number:
        return None
    stmt = select(Pass.barcode)
    merchant_id = session.info.get("merchant_id")
    if merchant_id is not None:  # the session's filter does this too; stated for the reader
        stmt = stmt.where(Pass.merchant_id == merchant_id)
    return session.scalars(
        stmt.join(Member, Member.id == Pass.member_id)
        .where(
            Member.external_id == number,
            Pass.status == PassStatus.ACTIVE.value,
            Pass.coupon_id.is_(None),
        )
        .order_by(Pass.id.desc())
        .limit(1)
    ).first()


def _unknown_code() -> errors.WalletpassError:
    # Unknown and "another merchant's" look the same: never confirm a code exists.
    return errors.UnknownCode("no pass or coupon of this merchant has this code")


@dataclass(frozen=True, slots=True)
class ScannedPass:
    """The scanned pass as the till uses it. A value: no action changes the pass row
    through it (a coupon's rollover loads the row itself), and an ORM load of the pass
    cost more than the rest of the first query."""

    id: int
    merchant_id: int
    serial: str
    status: str
    member_id: int | None
    coupon_id: int | None


@dataclass
class Resolved:
    pass_row: ScannedPass
    member: Member | None
    program: Program | None
    # Held so that the session keeps it: its identity map holds objects weakly, and the
    # purchase reads the merchant's time zone and currency through session.get().
    merchant: Merchant
    has_coupons: bool


_SCANNED_PASS = [getattr(Pass, f.name) for f in fields(ScannedPass)]


def _resolve_statement() -> Select[Any]:
    """The scan's first query, built once so that its compiled form is cached: an ORM
    select, so the member, program and merchant come back as the session's persistent
    objects, with the tenant filter built in (:func:`scoped_to_merchant`: every entity in
    it, the pass, the program and member joined to it, the coupons and webhook endpoints
    asked after, is the session's merchant's).

    The member's row is locked: ``FOR UPDATE OF members`` on PostgreSQL (which reads the
    row's newest version); SQLite renders no FOR UPDATE, its writers are serialized
    already.
    """
    has_coupons = (
        select(Coupon.id)
        .where(Coupon.member_id == Pass.member_id, Coupon.status == "active")
        .exists()
    )
    return (
        select(
            *_SCANNED_PASS,
            Member,
            Program,
            Merchant,
            has_coupons,
            any_active_endpoint(Pass.merchant_id),
        )
        .select_from(Pass)
        .join(Merchant, Merchant.id == Pass.merchant_id)
        .outerjoin(Program, Program.id == Pass.program_id)
        .where(Pass.barcode == bindparam("code"))
    )


_RESOLVE = _resolve_statement()
# A member's card: the member joined and locked.
_RESOLVE_LOCKED = scoped_to_merchant(
    _RESOLVE.join(Member, Member.id == Pass.member_id).with_for_update(of=Member)
)
# A coupon (no member), or a lookup, which locks nothing.
_RESOLVE_PLAIN = scoped_to_merchant(_RESOLVE.outerjoin(Member, Member.id == Pass.member_id))
# A till's scan starts in a session of its own, which holds no object yet: the same
# statements then run on the driver's cursor (walletpass.driversql) and the row's member,
# program and merchant become the session's objects as loaded, unmodified (5.6 % of a
# scan's instructions: 4.78 million through Session.execute, 4.51 million so; callgrind,
# in-process, PostgreSQL). A session that already holds objects (a CRM batch, a test) runs
# them through the ORM with populate_existing, which gives the rows just read (the locked
# member's newest version) to the objects held.
_DRIVER_LOCKED = DriverStatement(_RESOLVE_LOCKED)
_DRIVER_PLAIN = DriverStatement(_RESOLVE_PLAIN)
_REFRESHING = {"populate_existing": True}
_RESOLVE_LOCKED_REFRESHING = _RESOLVE_LOCKED.execution_options(**_REFRESHING)
_RESOLVE_PLAIN_REFRESHING = _RESOLVE_PLAIN.execution_options(**_REFRESHING)
# The entities the first query reads whole, in select order after the pass's columns.
_LOADED = tuple(
    (cls, [prop.key for prop in cls.__mapper__.column_attrs]) for cls in (Member, Program, Merchant)
)


def _resolved_row(session: Session, params: dict[str, Any], *, lock: bool) -> tuple[Any, bool]:
    """The first query's row as (pass columns..., member, program, merchant, coupons,
    endpoints), and whether the member's row is locked by it. A code that is not a
    member's card (a coupon) is looked up again without the lock, whose inner join to the
    member finds no row for it."""
    if session.identity_map:
        row = session.execute(_RESOLVE_LOCKED_REFRESHING, params).one_or_none() if lock else None
        if row is not None:
            return row, True
        return session.execute(_RESOLVE_PLAIN_REFRESHING, params).one_or_none(), False
    conn = session.connection()
    rows = _DRIVER_LOCKED.rows(conn, params) if lock else []
    locked = bool(rows)
    if not rows:
        rows = _DRIVER_PLAIN.rows(conn, params)
        if not rows:
            return None, False
    at = len(_SCANNED_PASS)
    row = rows[0]
    loaded: list[Any] = []
    for cls, keys in _LOADED:
        values = dict(zip(keys, row[at : at + len(keys)], strict=True))
        at += len(keys)
        # An outer join's missing row: every column NULL, the primary key included.
        loaded.append(None if values["id"] is None else _as_loaded(session, cls, values))
    return (*row[: len(_SCANNED_PASS)], *loaded, *row[at:]), locked


def _as_loaded(session: Session, cls: type[Any], values: dict[str, Any]) -> Any:
    """``values`` as the session's persistent object, as if a query had loaded it: no
    attribute counts as changed (make_transient_to_detached), so nothing is flushed for it."""
    obj = cls(**values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def _resolve_for_scan(session: Session, code: str, *, lock: bool) -> Resolved:
    """The scanned pass with its member (locked when ``lock``), program and merchant, in
    one round trip; the same query tells whether the member holds coupons and whether the
    merchant has a webhook endpoint, so a plain purchase asks nothing twice.
    """
    merchant_id = session.info.get("merchant_id")
    if merchant_id is None:
        raise AssertionError("a scan runs in a session bound to its merchant")
    params = {"code": codes.normalize_barcode(code), MERCHANT_PARAMETER: merchant_id}
    row, locked = _resolved_row(session, params, lock=lock)
    if row is None:
        own = code_of_card_number(session, code)
        if own is not None:
            row, locked = _resolved_row(session, {**params, "code": own}, lock=lock)
    if row is None:
        raise _unknown_code()
    at = len(_SCANNED_PASS)
    pass_row = ScannedPass(*row[:at])
    member, program, merchant, coupons, endpoints = row[at:]
    if member is not None and lock:
        if locked:
            ledger.note_locked(session, member)
        else:
            # The card was committed between the two queries: lock its member now.
            member = ledger.lock_member(session, member.id)
    if not endpoints:
        note_no_active_endpoint(session, merchant.id)
    return Resolved(pass_row, member, program, merchant, bool(coupons))


def apply_scan(
    session: Session,
    settings: Settings,
    req: ScanRequest,
    actor: ledger.Actor,
    *,
    api_key_id: int | None = None,
    user_id: int | None = None,
) -> ScanOutcome:
    if req.action not in ACTIONS:
        raise errors.ValidationFailed(f"unknown action {req.action!r}")
    found = _resolve_for_scan(session, req.code, lock=req.action != "lookup")
    pass_row, member, program = found.pass_row, found.member, found.program
    if pass_row.status != PassStatus.ACTIVE and req.action != "lookup":
        raise errors.PassInactive(f"this pass is {pass_row.status}")
    coupon = session.get(Coupon, pass_row.coupon_id) if pass_row.coupon_id else None
    change = ledger.Change()
    key_base = req.receipt_id or uuid.uuid4().hex
    if req.action == "purchase":
        _need(member, "a purchase needs a loyalty card, not a coupon")
        _need_amount(req)
        _need_receipt(req)
        assert member is not None
        assert req.amount is not None
        assert req.receipt_id
        change = purchases.record_purchase(
            session,
            settings,
            member,
            amount=req.amount,
            receipt_id=req.receipt_id,
            actor=actor,
            currency=req.currency,
            lines=req.lines,
            redeem_points=req.redeem_points,
        )
    elif req.action == "stamp":
        _need(member, "stamps go on a stamp card")
        assert member is not None
        change = purchases.add_stamps(
            session, settings, member, count=req.stamps, key=f"stamp:{key_base}", actor=actor
        )
    elif req.action == "redeem_reward":
        _need(member, "rewards are redeemed from a loyalty card")
        if req.reward_id is None:
            raise errors.ValidationFailed(
                "reward_id is required to redeem a reward",
                errors=[{"field": "body.reward_id", "message": "required"}],
            )
        assert member is not None
        change = rewards.redeem_reward(
            session,
            settings,
            member,
            reward_id=req.reward_id,
            key=f"reward:{key_base}:{req.reward_id}",
            actor=actor,
        )
    elif req.action == "redeem_coupon":
        if coupon is None:
            raise errors.ActionNotAllowed("this pass is not a coupon")
        memberships.check_in_force(session, coupon.member_id)
        coupon, _offer, rolled = redeem_coupon(session, settings, coupon.id)
        change.rolled_over_to = rolled.id if rolled else None
    elif req.action == "refund":
        _need(member, "refunds apply to a loyalty card")
        _need_amount(req)
        _need_receipt(req)
        assert member is not None
        assert req.amount is not None
        assert req.receipt_id
        change = ledger.refund(
            session,
            settings,
            member,
            receipt_id=req.receipt_id,
            amount=req.amount,
            refund_id=req.refund_id,
            actor=actor,
        )
    # No re-read needed: the actions lock these rows with populate_existing, which
    # refreshes the very objects held here.
    offer = session.get(Offer, coupon.offer_id) if coupon else None
    scan, catalogue = _record_scan(
        session,
        member,
        merchant_id=pass_row.merchant_id,
        store_id=actor.store_id,
        api_key_id=api_key_id,
        user_id=user_id,
        pass_id=pass_row.id,
        member_id=member.id if member else None,
        coupon_id=coupon.id if coupon else None,
        action=req.action,
        code=req.code[:200],
        amount=req.amount,
        currency=req.currency,
        receipt_id=req.receipt_id,
        result="ok",
        error_type=None,
        points_delta=change.points or change.stamps,
        details={
            "entries": change.entries,
            "replayed": change.replayed,
            "redemption_code": change.redemption_code,
        },
    )
    emit(
        session,
        scan.merchant_id,
        "scan.recorded",
        {
            "scan_id": scan.id,
            "action": scan.action,
            "pass_serial": pass_row.serial,
            "member_id": scan.member_id,
            "coupon_id": scan.coupon_id,
            "store_id": scan.store_id,
            "amount": str(scan.amount) if scan.amount is not None else None,
            "receipt_id": scan.receipt_id,
            "points_delta": change.points,
            "stamps_delta": change.stamps,
        },
    )
    outcome = ScanOutcome(scan, pass_row, member, program, coupon, offer, change)
    if member is not None:
        outcome.redeemable_rewards = rewards.redeemable_among(session, member, catalogue)
        # Known from the first query, taken before this scan. A scan creates a coupon
        # only by rolling over one it redeemed, which was active then, so "none" stays
        # true: no query needed.
        if found.has_coupons:
            outcome.coupons = member_coupons(session, member)
    return outcome


def _record_scan(
    session: Session, member: Member | None, **values: Any
) -> tuple[RecordedScan, Sequence[Sequence[Any]]]:
    """The scan's row, by a Core INSERT (this runs on every scan), and, for a member's
    card, the program's reward catalogue the answer lists: one statement on PostgreSQL,
    two on SQLite (which cannot INSERT inside a WITH).

    :return: the scan, and the catalogue as
        ``rewards.CATALOGUE_COLUMNS`` rows (empty for a coupon).
    """
    values["created_at"] = utcnow()
    values.setdefault("undone_at", None)
    conn = session.connection()
    catalogue: Sequence[Sequence[Any]] = []
    if member is not None and conn.dialect.name == "postgresql":
        # The catalogue must see a reward redeemed in this unit of work at its new stock.
        session.flush()
        catalogue_of = {
            "catalogue_program": member.program_id,
            "catalogue_merchant": member.merchant_id,
        }
        rows = _RECORD_SCAN_PG.rows(conn, values | catalogue_of)
        scan_id = rows[0][0]
        catalogue = [row[1:] for row in rows if row[1] is not None]
    else:
        scan_id = conn.execute(_INSERT_SCAN, values).scalar_one()
        if member is not None:
            catalogue = rewards.catalogue_rows(session, member)
    return RecordedScan(id=scan_id, **values), catalogue


_SCANS = Scan.__table__
_INSERT_SCAN = (
    insert(_SCANS)
    .values({c.name: bindparam(c.name, type_=c.type) for c in _SCANS.c if c.name != "id"})
    .returning(_SCANS.c.id)
)
_RECORDED = _INSERT_SCAN.cte("recorded")
_CATALOGUE = Reward.__table__
# WITH recorded AS (INSERT ... RETURNING id) SELECT recorded.id, <catalogue> FROM recorded
# LEFT JOIN rewards ON <the program's active rewards>: one row with NULLs if it has none.
_RECORD_SCAN_PG = DriverStatement(
    select(_RECORDED.c.id, *rewards.CATALOGUE_COLUMNS)
    .select_from(
        _RECORDED.outerjoin(
            _CATALOGUE,
            rewards.active_catalogue(
                bindparam("catalogue_program"), bindparam("catalogue_merchant")
            ),
        )
    )
    .order_by(_CATALOGUE.c.cost_points)
)


def member_coupons(session: Session, member: Member) -> list[tuple[Coupon, Offer]]:
    now = utcnow()
    found = []
    for coupon, offer in session.execute(
        select(Coupon, Offer)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(Coupon.member_id == member.id, Coupon.status == "active")
    ).all():
        if coupon_problem(offer, coupon, now) is None:
            found.append((coupon, offer))
    return found


def record_failed_scan(
    session: Session,
    code: str,
    action: str,
    exc: errors.WalletpassError,
    actor: ledger.Actor,
    *,
    merchant_id: int,
    api_key_id: int | None,
    user_id: int | None,
    receipt_id: str | None,
    amount: Decimal | None,
) -> None:
    """Failed scans go to the scan log (for staff anomaly reports); nothing else changes."""
    session.add(
        Scan(
            merchant_id=merchant_id,
            store_id=actor.store_id,
            api_key_id=api_key_id,
            user_id=user_id,
            action=action[:32],
            code=code[:200],
            amount=amount,
            receipt_id=receipt_id,
            result="error",
            error_type=exc.code,
            details={"detail": exc.detail},
        )
    )


def undo_scan(session: Session, settings: Settings, scan_id: int, actor: ledger.Actor) -> Scan:
    """Reverse a scan made by mistake, within a few minutes: compensating ledger entries
    (the ledger stays append-only) and the coupon use given back."""
    # Locked (FOR UPDATE; SQLite renders none, its writers are serialized already).
    scan = session.scalars(select(Scan).where(Scan.id == scan_id).with_for_update()).one_or_none()
    if scan is None:
        raise errors.NotFound(f"no scan {scan_id}")
    if scan.undone_at is not None:
        return scan
    if scan.result != "ok" or utcnow() - scan.created_at > UNDO_WINDOW:
        raise errors.UndoExpired("only a successful scan of the last 5 minutes can be undone")
    entry_ids: list[int] = list(scan.details.get("entries") or [])
    if scan.details.get("replayed"):
        entry_ids = []  # a replay changed nothing, so there is nothing to reverse
    if entry_ids and scan.member_id:
        member = ledger.lock_member(session, scan.member_id)
        # After the member's lock: a refund of the same purchase running at the same
        # moment is either seen whole here or sees this undo (reversed once in total).
        for entry_id in sorted(entry_ids):
            ledger.undo_entry(
                session, member, entry_id, actor=actor, reason=f"undo of scan {scan.id}"
            )
        mark_changed(session, settings, member_id=member.id)
    if scan.action == "redeem_coupon" and scan.coupon_id:
        coupon = session.get(Coupon, scan.coupon_id)
        assert coupon is not None
        offer = session.get(Offer, coupon.offer_id)
        assert offer is not None
        coupon.uses = max(coupon.uses - 1, 0)
        coupon.status = "active"
        offer.redeemed_count = max(offer.redeemed_count - 1, 0)
        if scan.pass_id:
            pass_row = session.get(Pass, scan.pass_id)
            if pass_row is not None:
                pass_row.coupon_id = coupon.id
                mark_changed(session, settings, passes=[pass_row.id])
    scan.undone_at = utcnow()
    return scan


def _need(member: Member | None, message: str) -> None:
    if member is None:
        raise errors.ActionNotAllowed(message)


def _need_amount(req: ScanRequest) -> None:
    if req.amount is None:
        raise errors.ValidationFailed(
            "amount is required for this action",
            errors=[{"field": "body.amount", "message": "required"}],
        )


def _need_receipt(req: ScanRequest) -> None:
    if not req.receipt_id:
        raise errors.ValidationFailed(
            "receipt_id is required: it makes a retried scan count once",
            errors=[{"field": "body.receipt_id", "message": "required"}],
        )


def describe_program(program: Program | None) -> dict[str, Any]:
    if program is None:
        return {}
    return {
        "id": program.id,
        "slug": program.slug,
        "name": program.name,
        "kind": program.kind,
        "is_stamps": program.kind == ProgramKind.STAMPS,
    }
