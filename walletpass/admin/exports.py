"""Members and ledger as CSV, streamed in batches. Flask-free: yields text chunks.

The session must stay open while the generator runs (the view keeps its transaction
open for the length of the response), and rows are read by keyset pagination so a large
export never holds the whole table in memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.loyalty.models import LedgerEntry, Member

BATCH = 1000
_NUMBERISH = re.compile(r"^[+-]?[0-9][0-9 ().-]*$")
MEMBER_COLUMNS = (
    "id",
    "external_id",
    "name",
    "email",
    "phone",
    "birthday",
    "marketing_consent",
    "tags",
    "program_id",
    "tier",
    "points_balance",
    "stamps_balance",
    "lifetime_spend",
    "created_at",
    "last_activity_at",
)
LEDGER_COLUMNS = (
    "id",
    "member_id",
    "created_at",
    "kind",
    "points",
    "stamps",
    "amount",
    "currency",
    "reason",
    "actor_type",
    "actor_id",
    "receipt_id",
    "store_id",
    "expires_at",
)


def _line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else _safe(v) for v in values])
    return buf.getvalue()


def _safe(value: Any) -> Any:
    # A cell starting with = + - @ runs as a formula when the file is opened in a
    # spreadsheet; a member could name themselves "=HYPERLINK(...)".
    # Phone numbers and signed numbers are data, not formulas, and stay as they are.
    if (
        isinstance(value, str)
        and value[:1] in ("=", "+", "-", "@", "\t", "\r")
        and not _NUMBERISH.match(value)
    ):
        return "'" + value
    return value


def _tags(tags: dict[str, Any] | None) -> str:
    return ";".join(k if v is True else f"{k}={v}" for k, v in (tags or {}).items())


def _batches(session: Session, model: Any) -> Iterator[Any]:
    last = 0
    while True:
        rows = list(
            session.scalars(select(model).where(model.id > last).order_by(model.id).limit(BATCH))
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def members_csv(session: Session) -> Iterator[str]:
    yield _line(MEMBER_COLUMNS)
    for m in _batches(session, Member):
        yield _line(
            (
                m.id,
                m.external_id,
                m.name,
                m.email,
                m.phone,
                m.birthday.isoformat() if m.birthday else None,
                "yes" if m.marketing_consent else "no",
                _tags(m.tags),
                m.program_id,
                m.tier,
                m.points_balance,
                m.stamps_balance,
                m.lifetime_spend,
                m.created_at.isoformat(),
                m.last_activity_at.isoformat() if m.last_activity_at else None,
            )
        )


def ledger_csv(session: Session) -> Iterator[str]:
    yield _line(LEDGER_COLUMNS)
    for e in _batches(session, LedgerEntry):
        yield _line(
            (
                e.id,
                e.member_id,
                e.created_at.isoformat(),
                e.kind,
                e.points,
                e.stamps,
                e.amount,
                e.currency,
                e.reason,
                e.actor_type,
                e.actor_id,
                e.receipt_id,
                e.store_id,
                e.expires_at.isoformat() if e.expires_at else None,
            )
        )
