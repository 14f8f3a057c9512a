"""Migration 0015 (merchant_certificates) up and down on SQLite and PostgreSQL, and the
one-active-certificate-per-merchant index it makes (issue 22)."""

from __future__ import annotations

import os

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from walletpass.db import make_engine
from walletpass.migrate import alembic_config, upgrade

SCHEMA = "migration_check_certs"


@pytest.fixture
def empty_database(tmp_path):  # type: ignore[no-untyped-def]
    url = os.environ.get("WALLETPASS_TEST_DATABASE_URL")
    if url:
        engine = make_engine(url, connect_args={"options": f"-csearch_path={SCHEMA}"})
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    yield engine
    if url:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
    engine.dispose()


def _downgrade(engine, revision: str) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def _insert(conn, active: bool) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        text(
            "INSERT INTO merchant_certificates (merchant_id, pass_type_id, team_id, subject,"
            " cert_pem, intermediate_pem, sealed_key, not_after, fingerprint, active,"
            " created_at) VALUES (1, 'pass.com.x', 'T', 'UID=pass.com.x', 'c', 'i', :key,"
            " CURRENT_TIMESTAMP, 'f', :active, CURRENT_TIMESTAMP)"
        ),
        {"key": b"\x01sealed", "active": active},
    )


def test_0015_up_and_down(empty_database):
    upgrade(empty_database, "0015")
    with empty_database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO merchants (id, slug, name, timezone, currency, language, created_at)"
                " VALUES (1, 'm', 'M', 'UTC', 'EUR', 'en', CURRENT_TIMESTAMP)"
            )
        )
        _insert(conn, active=False)
        _insert(conn, active=True)
    # A second active certificate for the same merchant is refused by the database.
    with pytest.raises(IntegrityError), empty_database.begin() as conn:
        _insert(conn, active=True)
    _downgrade(empty_database, "0014")
    assert "merchant_certificates" not in inspect(empty_database).get_table_names()
    upgrade(empty_database, "0015")
    with empty_database.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM merchant_certificates")).scalar_one() == 0
