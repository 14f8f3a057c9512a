"""What the loyalty operations read about a member's program and merchant: the program's
parsed rules (shared between requests) and the merchant's local time."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.loyalty import rules
from walletpass.loyalty.models import Program
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
