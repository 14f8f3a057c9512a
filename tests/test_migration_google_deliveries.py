"""Migration 0010 on a database whose campaigns' Google deliveries are done jobs (SQLite and
PostgreSQL): each is copied onto its recipient row, which the results now read."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import text
from test_migrations import empty_database  # noqa: F401 - the fixture

from walletpass.db import UTCDateTime
from walletpass.migrate import upgrade

DONE_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
RECIPIENTS = (
    # id, pass id, via Google, its message job's status (None: no job)
    (1, 11, True, "done"),
    (2, 12, True, "dead"),
    (3, 13, True, None),
    (4, 14, False, None),
)


def _seed(engine: sa.Engine) -> None:
    """Recipient and job rows alone: the campaigns, members and passes they name are
    beside the point, so foreign keys are not checked while they are written."""
    rows = [
        (
            "INSERT INTO campaign_recipients (id, campaign_id, member_id, pass_id, holdout,"
            " status, via_apple, via_google, merchant_id) VALUES (:id, 5, :id, :pass_id,"
            " :no, 'sent', :no, :google, 1)",
            {"id": rid, "pass_id": pid, "google": google, "no": False},
        )
        for rid, pid, google, _status in RECIPIENTS
    ] + [
        (
            "INSERT INTO jobs (merchant_id, kind, payload, dedupe_key, status, run_at,"
            " attempts, max_attempts, created_at, finished_at) VALUES (1, 'google.message',"
            " '{}', :key, :status, :at, 1, 12, :at, :at)",
            {"key": f"campaign:5:google:{pid}", "status": status, "at": DONE_AT},
        )
        for _rid, pid, _google, status in RECIPIENTS
        if status
    ]
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            # A pragma outside any transaction (the engine's connections begin IMMEDIATE).
            raw.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            for sql, params in rows:
                at = params.get("at")
                if isinstance(at, datetime):  # stored as UTCDateTime writes it: naive text
                    params = {**params, "at": at.replace(tzinfo=None).isoformat(" ")}
                raw.driver_connection.execute(sql, params)  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
        finally:
            raw.close()
        return
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for sql, params in rows:
            conn.execute(text(sql), params)


def test_upgrade_copies_done_google_messages_onto_their_recipients(empty_database):  # noqa: F811
    upgrade(empty_database, "0009")
    _seed(empty_database)
    upgrade(empty_database, "0010")
    recipients = sa.table(
        "campaign_recipients", sa.column("id"), sa.column("google_delivered_at", UTCDateTime())
    )
    with empty_database.connect() as conn:
        rows = conn.execute(sa.select(recipients.c.id, recipients.c.google_delivered_at))
        stamped = {rid: moment for rid, moment in rows}
    assert stamped == {1: DONE_AT, 2: None, 3: None, 4: None}
