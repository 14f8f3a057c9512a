"""Migration 0017 (SQLite and PostgreSQL): apple_logs gains merchant_id, source, pattern
and count; the rows logged before keep their messages, up and down."""

from __future__ import annotations

from sqlalchemy import text
from test_migrations import _downgrade, empty_database  # noqa: F401 - the fixture

from walletpass.migrate import upgrade


def test_wallet_problems_columns_up_and_down(empty_database):  # type: ignore[no-untyped-def]  # noqa: F811
    upgrade(empty_database, "0014")
    with empty_database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO apple_logs (message, serial, created_at) VALUES"
                " ('Could not find pass', 'S1', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(empty_database, "0017")
    with empty_database.begin() as conn:
        row = conn.execute(
            text("SELECT message, serial, merchant_id, source, pattern, count FROM apple_logs")
        ).one()
        assert tuple(row) == ("Could not find pass", "S1", None, "wallet", None, 1)
        conn.execute(
            text(
                "INSERT INTO merchants (id, slug, name, timezone, currency, language, created_at)"
                " VALUES (1, 'm', 'M', 'UTC', 'EUR', 'en', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO apple_logs (message, created_at, merchant_id, source, pattern,"
                " count) VALUES ('APNs 410', CURRENT_TIMESTAMP, 1, 'apns', 'apns-unregistered', 5)"
            )
        )
    _downgrade(empty_database, "0014")
    with empty_database.connect() as conn:
        messages = conn.execute(text("SELECT message FROM apple_logs ORDER BY id")).scalars()
        assert list(messages) == ["Could not find pass", "APNs 410"]
        columns = conn.execute(text("SELECT * FROM apple_logs")).keys()
        assert "merchant_id" not in columns
