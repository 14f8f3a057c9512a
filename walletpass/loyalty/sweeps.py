"""Periodic work per merchant: expire points, warn before expiry, pay birthday bonuses,
review tiers, retire ended offer overlays. Every write here is keyed so that running a
sweep twice (a retry, two workers) changes nothing the second time."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import JobContext, handler, periodic
from walletpass.loyalty import earning, expiry, rules, tiers
from walletpass.loyalty.ledger import SYSTEM, free_key, lock_member, post
from walletpass.loyalty.memberships import auto_renew, schedule_notices
from walletpass.loyalty.models import LedgerEntry, Member, Program
from walletpass.loyalty.programs import merchant_now, program_rules
from walletpass.loyalty.purchases import qualifying_spend
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import set_status
from walletpass.tenancy.models import Merchant

log = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(hours=1)
# A sweep queues the moments due before the next one and a little after, in case the
# next one runs late; a moment queued twice is absorbed by the pending job's key.
NOTICE_MARGIN = timedelta(minutes=15)
# Members a sweep job handles in one transaction: a till waiting on a member's row lock
# waits for at most one batch, not for the merchant's whole sweep.
SWEEP_BATCH = 200


def ledger_records(session: Session, member_id: int) -> list[expiry.LedgerRecord]:
    return [
        expiry.LedgerRecord(e.id, e.created_at, e.points, e.kind, e.expires_at, e.reverses_id)
        for e in session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member_id, LedgerEntry.points != 0)
        )
    ]


# What the shop gives without the customer doing anything: it does not renew a rolling
# balance (ledger.ACTIVITY_KINDS), but lives a rolling period of its own.
_GRANTS = ("bonus", "adjust")


def _rolling_reference(member: Member) -> datetime:
    """What a rolling balance counts from: the customer's last activity, or joining."""
    return member.last_activity_at or member.created_at


def rolling_parts(session: Session, member: Member, months: int) -> list[tuple[int, datetime]]:
    """A rolling balance as (points, when they expire) parts: what it held at the
    customer's last activity expires ``months`` after it; each bonus or adjustment given
    since, ``months`` after it was given (a birthday bonus to a customer who stopped
    coming is theirs for the period, not written off at the next sweep, and does not keep
    their older points alive). Points spent or expired since come off the oldest first.
    """
    reference = _rolling_reference(member)
    grants = [
        [points, at]
        for points, at in session.execute(
            select(LedgerEntry.points, LedgerEntry.created_at)
            .where(
                LedgerEntry.member_id == member.id,
                LedgerEntry.kind.in_(_GRANTS),
                LedgerEntry.points > 0,
                LedgerEntry.created_at > reference,
            )
            .order_by(LedgerEntry.created_at, LedgerEntry.id)
        )
    ]
    balance = max(member.points_balance, 0)
    missing = max(sum(points for points, _ in grants) - balance, 0)
    for grant in grants:
        take = min(grant[0], missing)
        grant[0] -= take
        missing -= take
    parts = [(balance - sum(points for points, _ in grants), reference)]
    parts += [(points, at) for points, at in grants]
    return [(points, expiry.rolling_expires_at(at, months)) for points, at in parts if points > 0]


def _dated_points(
    session: Session, member: Member, exp: rules.Expiry | None
) -> list[tuple[int, datetime]]:
    """The member's points as (points, when they expire), under the program's expiry."""
    if isinstance(exp, rules.LotExpiry):
        return [
            (lot.points_left, lot.expires_at)
            for lot in expiry.open_lots(ledger_records(session, member.id))
            if lot.expires_at is not None
        ]
    if isinstance(exp, rules.RollingExpiry) and member.points_balance > 0:
        return rolling_parts(session, member, exp.months)
    return []


def next_expiry(
    session: Session, member: Member, parsed: rules.ProgramRules, now: datetime
) -> tuple[int, datetime] | None:
    """(points, when) of the next points to expire, if the program expires points: every
    point that expires on the shop's calendar day of the next expiry, and the last moment
    of them. The notice names that day, so it counts all of them (two purchases on one
    day are two lots, expiring hours apart), and its date stays the same while they
    expire one after the other (the member is told once)."""
    upcoming = [
        (points, at)
        for points, at in _dated_points(session, member, getattr(parsed, "expiry", None))
        if at > now
    ]
    if not upcoming:
        return None
    tz = merchant_now(session, member.merchant_id, now).tzinfo
    day = min(at for _, at in upcoming).astimezone(tz).date()
    named = [(points, at) for points, at in upcoming if at.astimezone(tz).date() <= day]
    return sum(points for points, _ in named), max(at for _, at in named)


def _rolling_due(session: Session, member: Member, months: int, now: datetime) -> int:
    """Points of a rolling balance whose period without activity is over at ``now``."""
    # Nothing given since the last activity expires before what it held: no query for
    # a member still within the period.
    if member.points_balance <= 0 or not expiry.rolling_expiry_due(
        _rolling_reference(member), months, now
    ):
        return 0
    return sum(points for points, at in rolling_parts(session, member, months) if at <= now)


def sweep_member(
    session: Session,
    settings: Settings,
    member: Member,
    program: Program,
    parsed: rules.ProgramRules,
    now: datetime,
) -> list[str]:
    """Apply every due rule to one member. Returns what was done (for logs and tests)."""
    done: list[str] = []
    changed = False
    exp = getattr(parsed, "expiry", None)
    if isinstance(exp, rules.LotExpiry) and expiry.lots_expiring(
        ledger_records(session, member.id), now
    ):
        # Read again under the member's lock: a sweep running at the same time wrote
        # them off already, or sees these. A lot may expire twice: points an undone
        # redemption gave back to it after it had expired (the next free key).
        member = lock_member(session, member.id)
        for lot in expiry.lots_expiring(ledger_records(session, member.id), now):
            post(
                session,
                member,
                kind="expire",
                key=free_key(session, member.merchant_id, f"expire:{lot.lot_id}"),
                actor=SYSTEM,
                points=-lot.points_left,
                reverses_id=lot.lot_id,
                reason=f"{lot.points_left} points expired (earned in lot {lot.lot_id})",
            )
            done.append(f"expired {lot.points_left}")
            changed = True
    elif isinstance(exp, rules.RollingExpiry) and _rolling_due(session, member, exp.months, now):
        member = lock_member(session, member.id)
        amount = _rolling_due(session, member, exp.months, now)
        if amount:
            reference = _rolling_reference(member).isoformat()
            post(
                session,
                member,
                kind="expire",
                # Expiry is no activity: the reference stays, the next key is free.
                key=free_key(
                    session, member.merchant_id, f"expire-rolling:{member.id}:{reference}"
                ),
                actor=SYSTEM,
                points=-amount,
                reason=f"{amount} points expired after {exp.months} months without activity",
            )
            done.append(f"expired {amount} (rolling)")
            changed = True
    upcoming = next_expiry(session, member, parsed, now)
    if (
        exp is not None
        and upcoming is not None
        and expiry.warning_due(exp, upcoming[1], now)
        and member.expiry_warned_for != upcoming[1]
    ):
        member.expiry_warned_for = upcoming[1]
        done.append(f"warned {upcoming[0]} expiring {upcoming[1]:%Y-%m-%d}")
        changed = True
    bonuses = getattr(parsed, "bonuses", None)
    birthday_points = getattr(bonuses, "birthday", 0) if bonuses else 0
    if member.birthday and birthday_points and isinstance(parsed, rules.PointsRules):
        today = merchant_now(session, member.merchant_id, now).date()
        key = f"birthday:{member.id}:{today.year}"
        already = session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key))
        assert bonuses is not None
        if already is None and earning.birthday_bonus_due(
            member.birthday, today, bonuses.birthday_mode, None
        ):
            member = lock_member(session, member.id)
            post(
                session,
                member,
                kind="bonus",
                key=key,
                actor=SYSTEM,
                points=birthday_points,
                reason="happy birthday",
                expires_at=expiry.expires_at_for_earn(parsed.expiry, now),
            )
            done.append(f"birthday {birthday_points}")
            changed = True
    if isinstance(parsed, rules.TiersRules) and parsed.downgrade.mode == "end_of_window":
        level = tiers.tier_after_review(
            parsed, member.tier, qualifying_spend(session, member, parsed), now, now
        )
        name = level.name if level else None
        if name != member.tier:
            done.append(f"tier {member.tier} -> {name}")
            member.tier = name
            changed = True
    if changed:
        mark_changed(session, settings, member_id=member.id)
    return done


def sweep_merchant(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Sweep every member of the session's merchant in this one session (the CLI, tests).
    Returns how many changed. The worker sweeps batch by batch instead (run_sweep)."""
    now = now or utcnow()
    changed, after = 0, 0
    while True:
        batch_changed, last = sweep_merchant_batch(session, settings, now, after=after)
        changed += batch_changed
        if last is None:
            return changed
        after = last


def sweep_merchant_batch(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    after: int = 0,
    limit: int | None = None,
) -> tuple[int, int | None]:
    """Sweep the next ``limit`` (SWEEP_BATCH) members of the session's merchant with ids
    above ``after``, the memberships with the first batch. Returns how many changed and
    the last member id swept when more may follow (None when the sweep is over)."""
    limit = limit or SWEEP_BATCH
    changed = 0
    swept: dict[int, tuple[Program, rules.ProgramRules]] = {}
    for program in session.scalars(select(Program).where(Program.active.is_(True))):
        parsed = program_rules(program)
        if isinstance(parsed, rules.MembershipRules):
            if after == 0:
                changed += sweep_memberships(session, settings, program, parsed, now)
            continue
        if program.kind == "offers":
            continue
        swept[program.id] = (program, parsed)
    if not swept:
        return changed, None
    members = session.scalars(
        select(Member)
        .where(Member.program_id.in_(list(swept)), Member.id > after)
        .order_by(Member.id)
        .limit(limit)
    ).all()
    for member in members:
        program, parsed = swept[member.program_id]
        if sweep_member(session, settings, member, program, parsed, now):
            changed += 1
    return changed, (members[-1].id if len(members) == limit else None)


def sweep_memberships(
    session: Session,
    settings: Settings,
    program: Program,
    parsed: rules.MembershipRules,
    now: datetime,
) -> int:
    """Club cards over time. A lapsed free card with automatic renewal is renewed. Any
    other lapsed card stays in the wallet, saying it lapsed, until it is renewed (cards
    once moved to Wallet's expired passes are brought back). And the ``membership.notice``
    jobs of reminders and ends due before the next sweep are queued: a renewal queues its
    own, this catches periods that began without one (a free card's enrolment, a card
    renewed before the jobs existed)."""
    horizon = now + SWEEP_INTERVAL + NOTICE_MARGIN
    lapsed_or_ending = session.scalars(
        select(Member).where(
            Member.program_id == program.id,
            Member.membership_valid_until.is_not(None),
            Member.membership_valid_until < horizon + timedelta(days=parsed.reminder_days),
        )
    ).all()
    changed = 0
    for member in lapsed_or_ending:
        assert member.membership_valid_until is not None
        if member.membership_valid_until > now:
            schedule_notices(session, member, parsed, start=now, end=horizon)
            continue
        if parsed.renewal == "auto" and not parsed.paid:
            auto_renew(session, settings, member)
            changed += 1
            continue
        for pass_row in session.scalars(
            select(Pass).where(Pass.member_id == member.id, Pass.status == PassStatus.EXPIRED)
        ):
            set_status(session, pass_row, PassStatus.ACTIVE, settings)
            changed += 1
    return changed


@handler("loyalty.sweep")
def run_sweep(ctx: JobContext, job) -> None:  # type: ignore[no-untyped-def]
    """System job: fan out one sweep per merchant, then schedule the next round."""
    if job.merchant_id is None:
        for merchant_id in ctx.session.scalars(select(Merchant.id)):
            enqueue(
                ctx.session,
                "loyalty.sweep",
                {},
                merchant_id=merchant_id,
                dedupe_key=f"sweep:{merchant_id}",
            )
        schedule(ctx.session, utcnow() + SWEEP_INTERVAL)
        return
    # One batch of members per job, each its own transaction: the member rows a batch
    # locks are released at its commit, not held until the merchant's last member.
    _changed, last = sweep_merchant_batch(
        ctx.session, ctx.settings, utcnow(), after=int(job.payload.get("after", 0))
    )
    if last is not None:
        enqueue(
            ctx.session,
            "loyalty.sweep",
            {"after": last},
            merchant_id=job.merchant_id,
            dedupe_key=f"sweep:{job.merchant_id}:after:{last}",
        )


@periodic
def schedule(session: Session, run_at: datetime | None = None) -> None:
    """Make sure a sweep is queued (idempotent: one pending sweep at a time)."""
    enqueue(
        session,
        "loyalty.sweep",
        {},
        merchant_id=None,
        dedupe_key="sweep:all",
        run_at=run_at or utcnow(),
    )
