"""The Alembic migrations build exactly the models' schema (SQLite and PostgreSQL)."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from walletpass.db import Base, make_engine
from walletpass.migrate import upgrade


@pytest.fixture
def empty_database(tmp_path):  # type: ignore[no-untyped-def]
    url = os.environ.get("WALLETPASS_TEST_DATABASE_URL")
    if url:
        # A schema of its own, so the suite's tables stay as they are.
        engine = make_engine(url, connect_args={"options": "-csearch_path=migration_check"})
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
            conn.execute(text("CREATE SCHEMA migration_check"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    yield engine
    if url:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA migration_check CASCADE"))
    engine.dispose()


def test_migrations_match_the_models(empty_database):
    upgrade(empty_database)
    with empty_database.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
        # The SQLite change counter starts at 0.
        assert conn.execute(text("SELECT value FROM change_counter")).scalar_one() == 0
