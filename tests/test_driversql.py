"""The scan's statements on the driver's cursor: the same rows as SQLAlchemy's, SQLAlchemy's
errors, and the statements seen by whatever watches the engine (echo, tracing)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import factories
import pytest
from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.exc import IntegrityError

from walletpass.driversql import DriverStatement
from walletpass.scan.models import Scan
from walletpass.tenancy.models import Merchant

_SCANS = Scan.__table__
_SCAN_BY_ID = select(_SCANS).where(_SCANS.c.id == bindparam("id"))
_NEW_MERCHANT = (
    insert(Merchant.__table__)
    # Python-side column defaults are not applied: the statement names every column.
    .values(
        slug=bindparam("slug"),
        name=bindparam("name"),
        timezone="UTC",
        currency="EUR",
        language="en",
        created_at=datetime(2026, 12, 6, tzinfo=UTC),
    )
    .returning(Merchant.__table__.c.id)
)


def _a_scan(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        scan = Scan(
            merchant_id=merchant.id,
            action="purchase",
            code="WP-1",
            amount=Decimal("12.50"),
            currency="EUR",
            result="ok",
            points_delta=12,
            details={"entries": [1, 2], "note": "é"},
            created_at=datetime(2026, 12, 6, 9, 30, tzinfo=UTC),
        )
        s.add(scan)
        s.flush()
        return scan.id


def test_rows_are_the_ones_sqlalchemy_gives(runtime):  # type: ignore[no-untyped-def]
    scan_id = _a_scan(runtime)
    statement = DriverStatement(_SCAN_BY_ID)
    with runtime.transaction() as s:
        conn = s.connection()
        expected = conn.execute(_SCAN_BY_ID, {"id": scan_id}).one()
        for _ in range(3):  # the first run settles the row shape, the next ones reuse it
            (row,) = statement.rows(conn, {"id": scan_id})
            assert tuple(row) == tuple(expected)
    assert row.amount == Decimal("12.50")
    assert row.details == {"entries": [1, 2], "note": "é"}
    assert row.created_at == datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    assert row.undone_at is None


def test_a_driver_error_is_sqlalchemys_and_the_transaction_rolls_back(runtime):  # type: ignore[no-untyped-def]
    statement = DriverStatement(_NEW_MERCHANT)
    with runtime.transaction() as s:
        statement.rows(s.connection(), {"slug": "twice", "name": "First"})
    with pytest.raises(IntegrityError), runtime.transaction() as s:
        statement.rows(s.connection(), {"slug": "twice", "name": "Second"})
    with runtime.transaction() as s:
        names = s.scalars(select(Merchant.name).where(Merchant.slug == "twice")).all()
    assert names == ["First"]


def test_a_missing_parameter_is_named(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s, pytest.raises(KeyError, match="'name'"):
        DriverStatement(_NEW_MERCHANT).rows(s.connection(), {"slug": "no-name"})


def test_tracing_and_echo_see_the_statements(runtime, caplog):  # type: ignore[no-untyped-def]
    # A tracer (OpenTelemetry's SQLAlchemy instrumentation listens so) or the engine's
    # log at INFO must see the hot statements as it sees every other.
    scan_id = _a_scan(runtime)
    statement = DriverStatement(_SCAN_BY_ID)
    seen: list[str] = []

    def trace(conn, cursor, sql, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(sql)

    event.listen(runtime.engine, "before_cursor_execute", trace)
    try:
        with runtime.transaction() as s:
            (row,) = statement.rows(s.connection(), {"id": scan_id})
    finally:
        event.remove(runtime.engine, "before_cursor_execute", trace)
    assert row.id == scan_id
    assert any("FROM scans" in sql for sql in seen)

    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"), runtime.transaction() as s:
        (row,) = statement.rows(s.connection(), {"id": scan_id})
    assert row.code == "WP-1"
    assert "FROM scans" in caplog.text


def test_a_statement_without_columns_is_refused():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="declare its columns"):
        DriverStatement(insert(Merchant.__table__).values(slug="x", name="y"))


def test_a_database_error_does_not_carry_the_statements_parameters(runtime):  # type: ignore[no-untyped-def]
    # Error logs and a job's last_error keep the error's text: a member's name or email
    # in the statement's parameters must not be in it, whichever way the statement ran.
    statement = DriverStatement(_NEW_MERCHANT)
    with runtime.transaction() as s:
        statement.rows(s.connection(), {"slug": "ada-lovelace-shop", "name": "Ada Lovelace"})
    params = {"slug": "ada-lovelace-shop", "name": "Ada Lovelace"}
    runs = (
        lambda conn: statement.rows(conn, params),
        lambda conn: conn.execute(_NEW_MERCHANT, params),
    )
    for run in runs:
        with runtime.transaction() as s, pytest.raises(IntegrityError) as raised:
            run(s.connection())
        assert "Ada Lovelace" not in str(raised.value)
        assert "parameters hidden" in str(raised.value)
