"""What a card did at the tills lately, for the till page's refund control. Flask-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.scan.models import Scan

RECENT_PURCHASES = 5


@dataclass(frozen=True)
class RecentPurchase:
    receipt_id: str
    amount: Decimal
    at: datetime


def recent_purchases(
    session: Session, member_id: int, limit: int = RECENT_PURCHASES
) -> list[RecentPurchase]:
    """The member's last purchases at a till (the till page or ``POST /api/v1/scans``)
    that stand, newest first: what a customer brings back to the counter, with the
    receipt id a refund names. One undone as a mistake is not listed; whether a purchase
    can still be refunded, and by how much, is the ledger's to say when it is asked."""
    rows = session.execute(
        select(Scan.receipt_id, Scan.amount, Scan.created_at)
        .where(
            Scan.member_id == member_id,
            Scan.action == "purchase",
            Scan.result == "ok",
            Scan.undone_at.is_(None),
            Scan.receipt_id.is_not(None),
            Scan.amount.is_not(None),
        )
        .order_by(Scan.created_at.desc(), Scan.id.desc())
        # A retried purchase logs a scan of its own under the same receipt: room for them.
        .limit(limit * 4)
    ).all()
    found: dict[str, RecentPurchase] = {}
    for receipt, amount, at in rows:
        found[receipt] = RecentPurchase(receipt, amount, at)  # the first scan's moment
    return list(found.values())[:limit]
