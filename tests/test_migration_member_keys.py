"""Migration 0006 on a database that already holds duplicate members (SQLite and
PostgreSQL): the oldest keeps the email or phone, the newer ones are kept, cleared of it and
tagged, each reported; then the database refuses a new duplicate."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from test_migrations import empty_database  # noqa: F401 - the fixture

from walletpass.db import JsonType, UTCDateTime
from walletpass.migrate import upgrade

_members = sa.table(
    "members",
    sa.column("id", sa.Integer),
    sa.column("merchant_id", sa.Integer),
    sa.column("program_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("email", sa.String),
    sa.column("phone", sa.String),
    sa.column("language", sa.String),
    sa.column("marketing_consent", sa.Boolean),
    sa.column("referral_code", sa.String),
    sa.column("tags", JsonType),
    sa.column("points_balance", sa.Integer),
    sa.column("stamps_balance", sa.Integer),
    sa.column("lifetime_spend", sa.Numeric),
    sa.column("created_at", UTCDateTime()),
)
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _member(conn: sa.Connection, member_id: int, program_id: int, **kw: object) -> None:
    conn.execute(
        _members.insert().values(
            id=member_id,
            merchant_id=1,
            program_id=program_id,
            name=f"M{member_id}",
            language="en",
            marketing_consent=False,
            referral_code=f"R{member_id}",
            tags={"vip": True} if member_id == 3 else {},
            points_balance=member_id * 10,
            stamps_balance=0,
            lifetime_spend=Decimal("0"),
            **{"email": None, "phone": None, "created_at": T0, **kw},
        )
    )


def test_upgrade_keeps_the_oldest_and_reports_the_duplicates(empty_database, caplog):  # noqa: F811
    upgrade(empty_database, "0005")
    with empty_database.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO merchants (id, slug, name, timezone, currency, language, created_at)"
                " VALUES (1, 'm', 'M', 'UTC', 'EUR', 'en', CURRENT_TIMESTAMP)"
            )
        )
        for pid in (1, 2):
            conn.execute(
                sa.text(
                    "INSERT INTO programs (id, merchant_id, slug, name, kind, template, rules,"
                    " design, active, google_class_version, created_at) VALUES (:id, 1, :slug,"
                    " 'P', 'points', 'points_card', '{}', '{}', true, 0, CURRENT_TIMESTAMP)"
                ),
                {"id": pid, "slug": f"p{pid}"},
            )
        hour = timedelta(hours=1)
        # Member 2 joined first (its id is higher: ids do not say who is older).
        _member(conn, 2, 1, email=" Ana@Example.test", phone="+44 20 7946 0000")
        _member(conn, 1, 1, email="ana@example.test", created_at=T0 + hour)
        _member(conn, 3, 1, email="bo@example.test", phone="+442079460000", created_at=T0 + hour)
        _member(conn, 4, 2, email="ANA@example.test")  # another program: no duplicate
        _member(conn, 5, 1)  # no email, no phone: any number of them
        _member(conn, 6, 1)
    with caplog.at_level(logging.WARNING, logger="walletpass.migrations"):
        upgrade(empty_database)
    with empty_database.connect() as conn:
        rows = conn.execute(
            sa.select(
                _members.c.id, _members.c.email, _members.c.phone, _members.c.tags,
                _members.c.points_balance,
            ).order_by(_members.c.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        (
            1, None, None,
            {"duplicate_of": 2, "duplicate_email": "ana@example.test"}, 10,
        ),
        (2, "ana@example.test", "+442079460000", {}, 20),
        (
            3, "bo@example.test", None,
            {"vip": True, "duplicate_of": 2, "duplicate_phone": "+442079460000"}, 30,
        ),
        (4, "ana@example.test", None, {}, 40),
        (5, None, None, {}, 50),
        (6, None, None, {}, 60),
    ]  # fmt: skip
    reports = [r.getMessage() for r in caplog.records if r.name == "walletpass.migrations"]
    assert len(reports) == 2
    assert "members 2 and 1 of program 1 have the email 'ana@example.test'" in reports[0]
    assert "members 2 and 3 of program 1 have the phone '+442079460000'" in reports[1]
    # From now on the database itself refuses a second member with the address.
    with pytest.raises(IntegrityError), empty_database.begin() as conn:
        _member(conn, 7, 1, email="ana@example.test")
    with empty_database.begin() as conn:
        _member(conn, 8, 2, email="bo@example.test", phone="+442079460000")
