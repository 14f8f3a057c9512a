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
from walletpass.loyalty.ledger import SYSTEM, lock_member, post
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


def ledger_records(session: Session, member_id: int) -> list[expiry.LedgerRecord]:
    return [
        expiry.LedgerRecord(e.id, e.created_at, e.points, e.kind, e.expires_at, e.reverses_id)
        for e in session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member_id, LedgerEntry.points != 0)
        )
    ]


def next_expiry(
    session: Session, member: Member, parsed: rules.ProgramRules, now: datetime
) -> tuple[int, datetime] | None:
    """(points, when) of the next points to expire, if the program expires points."""
    exp = getattr(parsed, "expiry", None)
    if isinstance(exp, rules.LotExpiry):
        lots = [
            lot
            for lot in expiry.open_lots(ledger_records(session, member.id))
            if lot.expires_at is not None and lot.expires_at > now
        ]
        if not lots:
            return None
        first = min(lot.expires_at for lot in lots if lot.expires_at)
        return sum(lot.points_left for lot in lots if lot.expires_at == first), first
    if (
        isinstance(exp, rules.RollingExpiry)
        and member.last_activity_at
        and member.points_balance > 0
    ):
        return member.points_balance, expiry.rolling_expires_at(member.last_activity_at, exp.months)
    return None


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
    if isinstance(exp, rules.LotExpiry):
        for lot in expiry.lots_expiring(ledger_records(session, member.id), now):
            member = lock_member(session, member.id)
            post(
                session,
                member,
                kind="expire",
                key=f"expire:{lot.lot_id}",
                actor=SYSTEM,
                points=-lot.points_left,
                reverses_id=lot.lot_id,
                reason=f"{lot.points_left} points expired (earned in lot {lot.lot_id})",
            )
            done.append(f"expired {lot.points_left}")
            changed = True
    elif (
        isinstance(exp, rules.RollingExpiry)
        and member.points_balance > 0
        and (expiry.rolling_expiry_due(member.last_activity_at, exp.months, now))
    ):
        member = lock_member(session, member.id)
        assert member.last_activity_at is not None
        amount = member.points_balance
        post(
            session,
            member,
            kind="expire",
            key=f"expire-rolling:{member.id}:{member.last_activity_at.isoformat()}",
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
    """Sweep every member of the session's merchant. Returns how many changed."""
    now = now or utcnow()
    changed = 0
    for program in session.scalars(select(Program).where(Program.active.is_(True))):
        parsed = program_rules(program)
        if isinstance(parsed, rules.MembershipRules):
            changed += sweep_memberships(session, settings, program, parsed, now)
            continue
        if program.kind == "offers":
            continue
        for member in session.scalars(
            select(Member).where(Member.program_id == program.id).order_by(Member.id)
        ).all():
            if sweep_member(session, settings, member, program, parsed, now):
                changed += 1
    return changed


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
    sweep_merchant(ctx.session, ctx.settings)


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
