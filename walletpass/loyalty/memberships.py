"""Club cards: a membership is activated or renewed by a recorded payment (a paid one) or
by the renewal itself (a free one), and the wallets are told at its reminder and its end.

What a card says (pending, valid until, ends soon, lapsed) is read from the member's
dates at render time (walletpass.cards, through programs.membership_standing). A moment
passing writes nothing, so every renewal queues a ``membership.notice`` job at the
reminder and at the end of the new period, and the hourly sweep queues those of periods
renewed before these jobs existed.

``membership.notice``  ``{"member_id", "valid_until", "at"}``: ``at``, the reminder
    before ``valid_until`` or ``valid_until`` itself, has come: the member's cards are marked
    changed (a push; the card's notice field carries a change message), and a free card
    with automatic renewal is renewed. A renewal since leaves the job behind: it finds
    another end and does nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.i18n.formats import money
from walletpass.i18n.languages import DEFAULT
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import JobContext, RetryLater, handler
from walletpass.loyalty import expiry, rules
from walletpass.loyalty.amounts import check_money
from walletpass.loyalty.ledger import SYSTEM, Actor, Change, lock_member, post, replay_for
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.programs import membership_problem, membership_standing, program_rules
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.models import Merchant

if TYPE_CHECKING:
    from walletpass.jobs.models import Job

NOTICE_JOB = "membership.notice"


def check_in_force(session: Session, member_id: int | None) -> None:
    """Refuse a benefit held by a member (a coupon issued to them) while their membership
    gives nothing: a pending or lapsed member's coupons wait for the payment, as their
    rewards do. A coupon of no member, or of a member of another kind of program, passes.

    :raise errors.MembershipInactive: the member's membership is pending or lapsed.
    """
    if member_id is None:
        return
    member = session.get(Member, member_id)
    program = session.get(Program, member.program_id) if member is not None else None
    if member is None or program is None or program.kind != ProgramKind.MEMBERSHIP:
        return
    standing = membership_standing(program, member)
    if standing is not None and not standing.in_force:
        raise errors.MembershipInactive(membership_problem(standing))


def renew_membership(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    key: str,
    actor: Actor,
    amount: Decimal | None = None,
    currency: str | None = None,
    receipt_id: str | None = None,
) -> Change:
    """Activate or extend a club card by the program's validity period: from its current
    end if that is still ahead (renewing early loses nothing), else from now (a pending or
    lapsed card starts on the day it is paid).

    Idempotent on ``key`` (``membership:<receipt id>`` from the till, the API and the CRM,
    or the request's or event's own key): a retried payment renews once.

    :param amount: what was paid, required for a paid membership and equal to its price
        (a part payment or a typo renews nothing); none for a free one.
    :param currency: the merchant's, if given.
    :raise errors.ActionNotAllowed: not a membership card.
    :raise errors.ValidationFailed: the amount or currency does not match the program.
    """
    member = lock_member(session, member.id)
    program = session.get(Program, member.program_id)
    assert program is not None
    if program.kind != ProgramKind.MEMBERSHIP:
        raise errors.ActionNotAllowed("only a membership card can be renewed")
    previous = replay_for(session, key, member)
    if previous is not None:
        return Change(entries=[previous.id], replayed=True)
    parsed = program_rules(program)
    assert isinstance(parsed, rules.MembershipRules)
    merchant = session.get(Merchant, member.merchant_id)
    assert merchant is not None
    amount, currency = _payment(parsed, amount, currency, merchant.currency)
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
        currency=currency,
        receipt_id=receipt_id,
        reason=f"membership renewed until {member.membership_valid_until:%Y-%m-%d}",
        details={
            "valid_from": start.isoformat(),
            "valid_until": member.membership_valid_until.isoformat(),
        },
    )
    emit(
        session,
        member.merchant_id,
        "membership.renewed",
        {
            "member_id": member.id,
            "external_id": member.external_id,
            "valid_from": start,
            "valid_until": member.membership_valid_until,
            "amount": amount,
            "currency": currency,
            "receipt_id": receipt_id,
            "entry_id": entry.id,
        },
    )
    renewed = []
    for pass_row in session.scalars(select(Pass).where(Pass.member_id == member.id)):
        if pass_row.status == PassStatus.EXPIRED:
            # Lapsed cards were once moved to Wallet's expired passes; a renewal brings
            # them back (a voided card stays void: it was withdrawn, not lapsed).
            pass_row.status = PassStatus.ACTIVE
        renewed.append(pass_row.id)
    mark_changed(session, settings, passes=renewed)
    schedule_notices(session, member, parsed, start=now)
    return Change(entries=[entry.id])


def _payment(
    parsed: rules.MembershipRules,
    amount: Decimal | None,
    currency: str | None,
    merchant_currency: str,
) -> tuple[Decimal | None, str | None]:
    """The amount and currency the renewal's ledger entry records."""
    if currency is not None and currency != merchant_currency:
        raise errors.ValidationFailed(
            f"this shop's prices are in {merchant_currency}, not {currency}",
            errors=[{"field": "currency", "message": f"must be {merchant_currency}"}],
        )
    check_money(amount, merchant_currency, "amount")
    if not parsed.paid:
        if amount:
            raise errors.ValidationFailed(
                "this membership is free: renew it without an amount",
                errors=[{"field": "amount", "message": "a free membership takes no payment"}],
            )
        return None, None
    # The API's and the till's words (English), the amounts as the currency writes them:
    # "€30.00", "NT$300" (no decimals in a whole-unit currency).
    cost = money(parsed.price, merchant_currency, DEFAULT)
    price = f"{cost} for {parsed.validity_months} months"
    if amount is None:
        raise errors.ValidationFailed(
            f"a paid membership needs the amount paid ({price})",
            errors=[{"field": "amount", "message": "required for a paid membership"}],
        )
    if amount != parsed.price:
        # A part payment, a discount or a typo: refused rather than a period sold for less.
        raise errors.ValidationFailed(
            f"the membership costs {price}; {money(amount, merchant_currency, DEFAULT)} was "
            "recorded",
            errors=[{"field": "amount", "message": f"must be the price, {cost}"}],
        )
    return amount, merchant_currency


def notice_moments(parsed: rules.MembershipRules, valid_until: datetime) -> list[datetime]:
    """When a card whose period ends at ``valid_until`` changes by the clock alone: the
    reminder (for a manual renewal) and the end."""
    moments = [valid_until]
    automatic = parsed.renewal == "auto" and not parsed.paid
    if parsed.reminder_days and not automatic:
        moments.insert(0, valid_until - timedelta(days=parsed.reminder_days))
    return moments


def schedule_notices(
    session: Session,
    member: Member,
    parsed: rules.MembershipRules,
    *,
    start: datetime,
    end: datetime | None = None,
) -> None:
    """Queue the ``membership.notice`` jobs of the member's current period whose moment
    is at or after ``start`` (and before ``end``, when given: the sweep's window). One
    pending job per member and moment: queueing it again is absorbed."""
    until = member.membership_valid_until
    if until is None:
        return
    for at in notice_moments(parsed, until):
        if at < start or (end is not None and at >= end):
            continue
        enqueue(
            session,
            NOTICE_JOB,
            {"member_id": member.id, "valid_until": until.isoformat(), "at": at.isoformat()},
            merchant_id=member.merchant_id,
            dedupe_key=f"membership:{member.id}:{at.isoformat()}",
            run_at=at,
        )


@handler(NOTICE_JOB)
def membership_notice(ctx: JobContext, job: Job) -> None:
    session = ctx.session
    member = session.get(Member, job.payload.get("member_id"))
    if member is None or member.membership_valid_until is None:
        return
    until = datetime.fromisoformat(str(job.payload.get("valid_until")))
    if member.membership_valid_until != until:
        return  # renewed since: that renewal queued the jobs of its own period
    program = session.get(Program, member.program_id)
    if program is None or not program.active:
        return
    parsed = program_rules(program)
    if not isinstance(parsed, rules.MembershipRules):
        return
    now = utcnow()
    at = datetime.fromisoformat(str(job.payload.get("at")))
    if now < at:
        # Claimed a little early (another machine's clock): a card fetched now would
        # still show the moment before.
        wait = (at - now).total_seconds()
        raise RetryLater(f"membership {member.id} changes at {at:%H:%M:%S}", wait)
    if until <= now and parsed.renewal == "auto" and not parsed.paid:
        auto_renew(session, ctx.settings, member)
        return
    mark_changed(session, ctx.settings, member_id=member.id)


def auto_renew(session: Session, settings: Settings, member: Member) -> Change:
    """Renew a lapsed free card with automatic renewal, once per period (the notice job
    at its end and the sweep share the key)."""
    assert member.membership_valid_until is not None
    return renew_membership(
        session,
        settings,
        member,
        actor=SYSTEM,
        key=f"auto-renew:{member.id}:{member.membership_valid_until.isoformat()}",
    )
