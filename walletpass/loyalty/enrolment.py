"""Enrolment: a new member with a pass, the welcome bonus and first tier, or the member
already enrolled under the same external id, email or phone; a referral code names the
referrer."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.i18n.languages import DEFAULT, normalise
from walletpass.loyalty import earning, expiry, rules, tiers
from walletpass.loyalty.ledger import SYSTEM, Actor, post
from walletpass.loyalty.models import Member, Program, normalize_email, stored_phone
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


def find_enrolled(
    session: Session,
    program: Program,
    *,
    external_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Member | None:
    """The member these keys already name: the external id among the merchant's members,
    else the email, else the phone number in ``program`` (each as stored, normalised).

    :raise errors.Conflict: the phone number is another member's, one with another email:
        a phone names one member of a program, and this is not that member.
    """
    if external_id:
        found = session.scalars(
            select(Member).where(
                Member.merchant_id == program.merchant_id, Member.external_id == external_id
            )
        ).one_or_none()
        if found is not None:
            return found
    email, phone = normalize_email(email), stored_phone(phone)
    if email:
        found = session.scalars(
            select(Member).where(Member.program_id == program.id, Member.email == email)
        ).one_or_none()
        if found is not None:
            return found
    if not phone:
        return None
    found = session.scalars(
        select(Member).where(Member.program_id == program.id, Member.phone == phone)
    ).one_or_none()
    if found is not None and email and found.email and found.email != email:
        raise errors.Conflict(f"the phone number {phone} belongs to another member of this program")
    return found


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
    """Create a member with a pass, or return the existing one for the same external id,
    email or phone (a double submit, a CRM retry or a simultaneous enrolment on another
    channel creates nobody twice).

    :return: (member, pass, created)
    :raise errors.Conflict: the phone number is another member's (see find_enrolled).
    """
    keys = {"external_id": external_id, "email": email, "phone": phone}
    existing = find_enrolled(session, program, **keys)
    if existing is not None:
        return existing, _card_of(session, settings, program, existing), False
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
        email=email,
        phone=phone,
        birthday=birthday,
        language=normalise(language) or DEFAULT,
        marketing_consent=marketing_consent,
        referral_code=codes.new_referral_code(),
        referred_by_id=referrer.id if referrer else None,
        source=source,
        tags={},
    )
    try:
        # A savepoint: when another transaction enrolled the same keys since the lookup
        # above (PostgreSQL runs them side by side; this insert waited for its commit), the
        # unique keys refuse this member, and only the insert is undone, not the caller's
        # other work in this unit of work. The winner is the answer.
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError:
        winner = find_enrolled(session, program, **keys)
        if winner is None:
            raise
        return winner, _card_of(session, settings, program, winner), False
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


def _card_of(session: Session, settings: Settings, program: Program, member: Member) -> Pass:
    passes = member_passes(session, member.id)
    return passes[0] if passes else issue_member_pass(session, settings, program, member)


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
