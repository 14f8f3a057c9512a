"""Club cards: a membership's renewal, free or paid, extends its validity and revives
its expired passes."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.loyalty import expiry, rules
from walletpass.loyalty.ledger import Actor, Change, lock_member, post, replay_for
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.programs import program_rules
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus


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
    previous = replay_for(session, key, member)
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
