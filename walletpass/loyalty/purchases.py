"""Earning: a purchase (points or stamps, part of it paid with points, a referred member's
first purchase paying the referral bonuses, a tier upgrade on qualifying spend) and stamps
given by hand at the till."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.loyalty import earning, expiry, rules, tiers
from walletpass.loyalty.amounts import check_money
from walletpass.loyalty.ledger import (
    SYSTEM,
    Actor,
    Change,
    Entry,
    entry_in_force,
    in_force,
    lock_member,
    post,
    post_once,
    replay_for,
)
from walletpass.loyalty.models import LedgerEntry, Member, Program, ProgramKind
from walletpass.loyalty.programs import program_rules
from walletpass.passes.changes import mark_changed
from walletpass.tenancy.models import Merchant


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
        previous, key = entry_in_force(session, member.merchant_id, key)
        if previous is not None:
            return _replay_purchase(session, member, previous, amount, receipt_id)
    if program.kind in (ProgramKind.OFFERS, ProgramKind.MEMBERSHIP):
        raise errors.ActionNotAllowed(f"a {program.kind} program has no balance to earn into")
    if amount < 0:
        raise errors.ValidationFailed("amount must not be negative")
    merchant = session.get(Merchant, member.merchant_id)
    assert merchant is not None
    if currency is not None and currency.upper() != merchant.currency:
        # Points and lifetime spend are counted in the shop's currency: 12 USD is not 12 EUR,
        # and the shop would not want a till's wrong setting to be counted as if it were.
        raise errors.ValidationFailed(
            f"this shop counts purchases in {merchant.currency}, not {currency}",
            errors=[{"field": "body.currency", "message": f"must be {merchant.currency}"}],
        )
    check_money(amount, merchant.currency, "body.amount")
    for i, line in enumerate(lines or ()):
        check_money(line.amount, merchant.currency, f"body.lines[{i}].amount")
    parsed = program_rules(program)
    at = at or utcnow()
    change = Change(tier_before=member.tier)
    # Only a referred member's first purchase pays a referral bonus: skip the count otherwise.
    first_purchase = bool(member.referred_by_id) and _is_first_purchase(session, member.id)
    paid = amount
    if redeem_points:
        paid = _pay_with_points(
            session, member, parsed, amount, redeem_points, receipt_id, actor, change, key
        )
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
    posting: dict[str, Any] = {
        "kind": "earn",
        "actor": actor,
        "amount": amount,
        "currency": currency or merchant.currency,
        "receipt_id": receipt_id,
        "reason": "purchase",
        "expires_at": expiry.expires_at_for_earn(parsed.expiry, at),
        "spend": amount,
        # The member's passes change with it (this unit of work's one bump and push).
        "refresh_passes": settings,
        **earned,
    }
    # Written only if the receipt is new: a retried purchase (the till's network dropped
    # the answer) finds its first entry here and changes nothing.
    entry = post_once(session, member, key=key, **posting)
    if entry is None:
        previous, key = entry_in_force(session, member.merchant_id, key)
        if previous is not None:
            return _replay_purchase(session, member, previous, amount, receipt_id)
        # Every purchase under this receipt was undone: this one is new, under the
        # receipt's next key.
        entry = post(session, member, key=key, **posting)
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
    return _replayed_change(session, previous)


def _replayed_change(session: Session, previous: Entry) -> Change:
    # The purchase in force: not one undone earlier under the same receipt.
    entries = session.scalars(
        select(LedgerEntry)
        .where(
            LedgerEntry.member_id == previous.member_id,
            LedgerEntry.receipt_id == previous.receipt_id,
            in_force(previous.member_id),
        )
        .order_by(LedgerEntry.id)
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
    purchase_key: str,
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
        # The purchase's generation (pay#2:R for purchase#2:R): see ledger.generation_key.
        key="pay" + purchase_key.removeprefix("purchase"),
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
    previous = replay_for(session, key, member)
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
