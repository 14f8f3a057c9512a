"""What the loyalty operations read about a member's program and merchant: the program's
parsed rules (shared between requests), the merchant's local time, and where a member
stands in a membership program (pending, active, lapsed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.loyalty import rules
from walletpass.loyalty.models import Member, Program
from walletpass.tenancy.models import Merchant

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


def merchant_now(session: Session, merchant_id: int, now: datetime | None = None) -> datetime:
    merchant = session.get(Merchant, merchant_id)
    tz = ZoneInfo(merchant.timezone if merchant else "UTC")
    return (now or utcnow()).astimezone(tz)


def today_for(session: Session, merchant_id: int) -> date:
    return merchant_now(session, merchant_id).date()


class MembershipState(StrEnum):
    # Joined a paid membership, nothing paid yet: the card exists (its barcode is how the
    # counter finds the member to take the payment) but gives nothing.
    PENDING = "pending"
    ACTIVE = "active"
    # Past its end and not renewed: the card stays in the wallet saying so, to be renewed.
    LAPSED = "lapsed"


@dataclass(frozen=True)
class Standing:
    """A member's membership as the till, the API and the card read it."""

    state: MembershipState
    valid_until: datetime | None
    paid: bool
    price: Decimal | None
    validity_months: int
    benefits: str
    # Active, but within the program's reminder_days of its end (a manual renewal).
    ends_soon: bool

    @property
    def in_force(self) -> bool:
        return self.state == MembershipState.ACTIVE


def membership_standing(
    program: Program, member: Member, now: datetime | None = None
) -> Standing | None:
    """Where ``member`` stands in ``program``, or None if it is not a membership.

    A paid membership never paid is pending; any membership past its end is lapsed. A free
    one without an end date (none is set only if the program was paid and made free
    later) is active: there is nothing to pay.
    """
    parsed = program_rules(program)
    if not isinstance(parsed, rules.MembershipRules):
        return None
    now = now or utcnow()
    until = member.membership_valid_until
    ends_soon = False
    if until is None:
        state = MembershipState.PENDING if parsed.paid else MembershipState.ACTIVE
    elif until <= now:
        state = MembershipState.LAPSED
    else:
        state = MembershipState.ACTIVE
        automatic = parsed.renewal == "auto" and not parsed.paid
        ends_soon = (
            not automatic
            and parsed.reminder_days > 0
            and until - timedelta(days=parsed.reminder_days) <= now
        )
    return Standing(
        state=state,
        valid_until=until,
        paid=parsed.paid,
        price=parsed.price,
        validity_months=parsed.validity_months,
        benefits=parsed.benefits,
        ends_soon=ends_soon,
    )


def membership_problem(standing: Standing) -> str:
    """Why a membership gives nothing now, for the till and the API."""
    if standing.state == MembershipState.PENDING:
        return f"this membership is unpaid: record its payment ({standing.price:.2f}) first"
    assert standing.valid_until is not None
    return f"this membership lapsed on {standing.valid_until:%Y-%m-%d}: renew it first"
