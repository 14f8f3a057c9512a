"""Enrolment: a new member with a pass, the welcome bonus and first tier, or the member
already enrolled under the same email or external id; a referral code names the referrer."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.loyalty import earning, expiry, rules, tiers
from walletpass.loyalty.ledger import SYSTEM, Actor, post
from walletpass.loyalty.models import Member, Program
from walletpass.loyalty.programs import program_rules
from walletpass.passes import codes
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import issue_pass


def member_passes(session: Session, member_id: int) -> list[Pass]:
    return list(
        session.scalars(
            select(Pass).where(Pass.member_id == member_id, Pass.status == PassStatus.ACTIVE)
        )
    )


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
        return existing, issue_member_pass(session, settings, program, existing), False
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
    pass_row = issue_member_pass(session, settings, program, member)
    parsed = program_rules(program)
    if isinstance(parsed, rules.MembershipRules) and not parsed.paid:
        # A free club card runs from joining. A paid one is pending, with no end date,
        # until its payment is recorded (walletpass.loyalty.memberships).
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


def issue_member_pass(
    session: Session, settings: Settings, program: Program, member: Member
) -> Pass:
    """A card of ``program`` for ``member``: at enrolment, or later for a member who has
    none (one imported from a CRM without a card, who then joins on the public page)."""
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
