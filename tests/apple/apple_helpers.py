"""Helpers shared by the Apple web-service tests (the card fixture is in conftest.py)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from walletpass.loyalty.models import Member
from walletpass.passes.changes import mark_changed


def set_points(runtime, settings, card: dict[str, Any], points: int) -> None:  # type: ignore[no-untyped-def]
    """Change what the card shows, the way the ledger does: balance + mark_changed."""
    with runtime.transaction(card["merchant_id"]) as s:
        s.get(Member, card["member_id"]).points_balance = points
        mark_changed(s, settings, passes=[card["id"]])


def wait_for_older_writers(runtime, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL, wait until every transaction that got its id before now has ended.

    A registrations listing's tag stops below the oldest transaction still in flight on
    the whole server (walletpass/passes/stamps.py), not only in this database. Until the
    writers older than the test's own changes are done, "nothing since this tag" (204)
    and "the new tag is past the old one" need not hold yet. Another xdist worker's or
    another test run's transactions are such writers; ones that start later get larger
    ids and cannot hold the tag back.
    """
    if runtime.is_sqlite:
        return
    deadline = time.monotonic() + timeout
    with runtime.engine.connect() as conn:
        newer = conn.execute(
            text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        ).scalar_one()
        conn.rollback()
        while time.monotonic() < deadline:
            oldest = conn.execute(
                text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            ).scalar_one()
            conn.rollback()
            if oldest >= newer:
                return
            time.sleep(0.02)
