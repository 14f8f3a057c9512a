"""Change stamps: the ordering behind Apple's ``passesUpdatedSince`` tag.

Wallet asks "what changed since tag T?" and we answer with passes whose stamp is > T and a
new tag. The trap is commit order: if transaction A takes stamp 10, B takes 11 and commits
first, a device that lists between the two commits receives tag 11 and never sees A's
change. Each backend gets a stamp that cannot be overtaken that way:

* SQLite has one writer at a time (we BEGIN IMMEDIATE), so a counter bumped inside the
  write transaction is already in commit order.
* PostgreSQL: the stamp is the writing transaction's id (``pg_current_xact_id()``, a
  64-bit never-wrapping xid8). A reader's snapshot tells which xids may still be in
  flight (everything >= ``pg_snapshot_xmin``), so the tag we hand out never passes the
  oldest transaction that could still commit a smaller stamp (:func:`safe_tag`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnClause, literal_column, text
from sqlalchemy.orm import Session


def next_stamp(session: Session) -> int:
    """The change stamp for a pass changed in this transaction."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
    session.execute(text("INSERT OR IGNORE INTO change_counter (id, value) VALUES (1, 0)"))
    return int(
        session.execute(
            text("UPDATE change_counter SET value = value + 1 WHERE id = 1 RETURNING value")
        ).scalar_one()
    )


# The writing transaction's id, as an SQL expression for an UPDATE's SET clause.
PG_STAMP_SQL = "pg_current_xact_id()::text::bigint"
PG_STAMP: ColumnClause[int] = literal_column(PG_STAMP_SQL)


def stamp_for_update(session: Session) -> Any:
    """The value to assign to ``Pass.change_stamp`` in this transaction.

    On PostgreSQL an SQL expression evaluated inside the UPDATE itself (no extra round
    trip); on SQLite the next counter value.
    """
    if session.get_bind().dialect.name == "postgresql":
        return PG_STAMP
    return next_stamp(session)


# The reader's snapshot bounds, as SQL: every stamp below LOW is committed or aborted,
# and no stamp handed out so far reaches HIGH.
PG_LOW_SQL = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
PG_HIGH_SQL = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"


def listing_horizon(session: Session) -> int | None:
    """Taken BEFORE reading changed passes: stamps above it may belong to writers still
    in flight. ``None`` on SQLite, where writers are serialized and nothing is in flight.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    return int(session.execute(text(f"SELECT {PG_LOW_SQL}")).scalar_one())


def next_tag(newest_returned: int, previous_tag: int, horizon: int | None) -> int:
    """The tag to hand back after returning passes stamped up to ``newest_returned``.

    Capped below the horizon, a slower writer with a smaller stamp is still "after" the
    tag when it commits. The cost: a pass changed by a transaction that overlapped this
    listing may be listed once more next time (Wallet then gets a 304), never missed.
    """
    if horizon is None:
        return max(newest_returned, previous_tag)
    return max(previous_tag, min(newest_returned, horizon - 1))


def ceiling(session: Session) -> int:
    """No stamp handed out so far exceeds this; a larger tag cannot be one of ours."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text(f"SELECT {PG_HIGH_SQL}")).scalar_one())
    value = session.execute(text("SELECT value FROM change_counter WHERE id = 1")).scalar()
    return int(value or 0)
