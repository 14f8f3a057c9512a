"""Statements run straight on the driver's cursor give what SQLAlchemy would, inside the
session's transaction, with SQLAlchemy's errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factories
import psycopg
import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from walletpass.directsql import Direct
from walletpass.loyalty.models import LedgerEntry
from walletpass.tenancy.models import ApiKey

_ENTRIES = LedgerEntry.__table__
_KEYS = ApiKey.__table__
_ALL_ENTRIES = select(_ENTRIES).where(_ENTRIES.c.member_id == bindparam("member_id"))
_ADD_ENTRY = (
    insert(_ENTRIES)
    .values({c.name: bindparam(c.name, type_=c.type) for c in _ENTRIES.c if c.name != "id"})
    .returning(_ENTRIES.c.id, _ENTRIES.c.created_at, _ENTRIES.c.details)
)


def _entry(member, key: str, **kw):  # type: ignore[no-untyped-def]
    values = {
        "merchant_id": member.merchant_id,
        "member_id": member.id,
        "kind": "earn",
        "points": 12,
        "stamps": 0,
        "amount": Decimal("12.50"),
        "currency": "EUR",
        "reason": "",
        "actor_type": "system",
        "actor_id": None,
        "idempotency_key": key,
        "receipt_id": None,
        "store_id": None,
        "reverses_id": None,
        "expires_at": datetime(2027, 1, 31, 23, 0, tzinfo=UTC),
        "details": {"lines": [{"sku": "flat-white", "qty": 2}]},
        "created_at": datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
    }
    return values | kw


@pytest.fixture
def member(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        return factories.member(s, factories.program(s, m))


def test_rows_are_what_sqlalchemy_gives(runtime, member):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        conn = s.connection()
        added = Direct(_ADD_ENTRY).rows(conn, _entry(member, "a"))
        # Bind processors ran (the JSON and the UTC datetime were stored as such) and
        # result processors too (aware UTC datetimes and dicts back, on both backends).
        assert added[0].created_at == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
        assert added[0].details == {"lines": [{"sku": "flat-white", "qty": 2}]}
        conn.execute(_ADD_ENTRY, _entry(member, "b", details={}, expires_at=None))
    with runtime.transaction() as s:
        conn = s.connection()
        direct = Direct(_ALL_ENTRIES).rows(conn, {"member_id": member.id})
        through_sqlalchemy = conn.execute(_ALL_ENTRIES, {"member_id": member.id}).all()
    assert [tuple(r) for r in direct] == [tuple(r) for r in through_sqlalchemy]
    assert len(direct) == 2
    first = direct[0]
    assert first.amount == Decimal("12.50") and isinstance(first.amount, Decimal)
    assert first.expires_at == datetime(2027, 1, 31, 23, 0, tzinfo=UTC)
    assert first.expires_at.tzinfo is not None
    assert direct[1].expires_at is None


def test_it_runs_inside_the_sessions_transaction(runtime, member):  # type: ignore[no-untyped-def]
    add = Direct(_ADD_ENTRY)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), runtime.transaction() as s:
        add.rows(s.connection(), _entry(member, "rolled-back"))
        raise Boom
    with runtime.transaction() as s:
        assert Direct(_ALL_ENTRIES).rows(s.connection(), {"member_id": member.id}) == []


def test_driver_errors_are_sqlalchemys(runtime, member):  # type: ignore[no-untyped-def]
    add = Direct(_ADD_ENTRY)
    with runtime.transaction() as s:
        add.rows(s.connection(), _entry(member, "once"))
    # The ledger's (merchant, idempotency key) is unique: callers catch IntegrityError.
    with pytest.raises(IntegrityError), runtime.transaction() as s:
        add.rows(s.connection(), _entry(member, "once"))
    with runtime.transaction() as s:
        assert len(Direct(_ALL_ENTRIES).rows(s.connection(), {"member_id": member.id})) == 1


def test_bad_parameters_are_refused_before_anything_is_sent(runtime, member):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        conn = s.connection()
        with pytest.raises(KeyError, match="member_id"):
            Direct(_ALL_ENTRIES).rows(conn, {})
        # The UTC column's own check: a naive datetime is a bug, not a local time.
        with pytest.raises(ValueError, match="naive"):
            Direct(_ADD_ENTRY).rows(conn, _entry(member, "naive", created_at=datetime(2026, 1, 1)))
        expanding = select(_KEYS.c.id).where(_KEYS.c.id.in_(bindparam("ids", expanding=True)))
        with pytest.raises(ValueError, match="expanding"):
            Direct(expanding).rows(conn, {"ids": [1, 2]})


def test_bare_text_rows_are_named_by_the_server(runtime):  # type: ignore[no-untyped-def]
    stmt = Direct(text("SELECT :n + 1 AS next, 'x' AS label").bindparams(bindparam("n", 0)))
    with runtime.transaction() as s:
        conn = s.connection()
        # A parameter with a value of its own may be left out.
        assert stmt.one_or_none(conn, {}) == (1, "x")
        row = stmt.one_or_none(conn, {"n": 41})
        assert (row.next, row.label) == (42, "x")


def test_a_statement_returning_nothing_gives_no_rows(runtime, member):  # type: ignore[no-untyped-def]
    touch = Direct(
        _KEYS.update().where(_KEYS.c.id == bindparam("id")).values(last_used_at=bindparam("at"))
    )
    with runtime.transaction() as s:
        assert touch.rows(s.connection(), {"id": 0, "at": datetime.now(UTC) - timedelta(1)}) == []


@pytest.mark.postgres
def test_a_dead_connection_is_dropped_not_reused(runtime):  # type: ignore[no-untyped-def]
    pid = Direct(text("SELECT pg_backend_pid() AS pid"))
    with runtime.transaction() as s:
        victim = pid.one_or_none(s.connection(), {}).pid
    # The server ends that pooled connection between two uses (a restart, an admin).
    url = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
    with pytest.raises(DBAPIError) as failed, runtime.transaction() as s:
        pid.one_or_none(s.connection(), {})
    assert failed.value.connection_invalidated
    with runtime.transaction() as s:
        assert pid.one_or_none(s.connection(), {}).pid != victim
