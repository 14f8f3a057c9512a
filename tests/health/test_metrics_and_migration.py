"""/metrics's certificate gauges, and migration 0016 up and down."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from healthkit import PASS_TYPE_ID, chain_settings, fresh_caches, with_settings
from sqlalchemy import inspect, text

from walletpass.app import create_app
from walletpass.db import make_engine
from walletpass.migrate import alembic_config, upgrade

__all__ = ["chain_settings", "fresh_caches"]  # fixtures, used below
pytestmark = pytest.mark.usefixtures("fresh_caches")


def _gauges(body: str, name: str) -> dict[str, float]:
    found = {}
    for line in body.splitlines():
        m = re.fullmatch(name + r'\{kind="(\w+)",pass_type_id="([^"]+)"\} (\S+)', line)
        if m:
            assert m.group(2) == PASS_TYPE_ID
            found[m.group(1)] = float(m.group(3))
    return found


def test_metrics_give_seconds_to_each_certificate_end(runtime, chain_settings):
    settings = chain_settings(days_left=10)
    app = create_app(runtime=with_settings(runtime, settings), start_worker=False)

    body = app.test_client().get("/metrics").get_data(as_text=True)

    seconds = _gauges(body, "walletpass_certificate_expiry_seconds")
    assert set(seconds) == {"pass", "apns", "wwdr"}
    ten_days = timedelta(days=10).total_seconds()
    assert abs(seconds["pass"] - ten_days) < 3600
    assert seconds["apns"] == seconds["pass"]
    assert seconds["wwdr"] > timedelta(days=3000).total_seconds()
    assert _gauges(body, "walletpass_certificate_expiring") == {
        "pass": 1.0,
        "apns": 1.0,
        "wwdr": 0.0,
    }


def test_metrics_read_the_certificates_once_a_minute(runtime, chain_settings, tmp_path):
    settings = chain_settings(days_left=10)
    client = create_app(runtime=with_settings(runtime, settings), start_worker=False).test_client()
    first = _gauges(
        client.get("/metrics").get_data(as_text=True), "walletpass_certificate_expiring"
    )
    # Gone from disk: the scrapes within the minute answer from the cache, not the files.
    (settings.resolved_certs_dir / "pass.pem").unlink()
    again = _gauges(
        client.get("/metrics").get_data(as_text=True), "walletpass_certificate_expiring"
    )

    assert first == again == {"pass": 1.0, "apns": 1.0, "wwdr": 0.0}


@pytest.fixture
def empty_database(tmp_path):  # type: ignore[no-untyped-def]
    url = os.environ.get("WALLETPASS_TEST_DATABASE_URL")
    if url:
        engine = make_engine(url, connect_args={"options": "-csearch_path=health_migration"})
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS health_migration CASCADE"))
            conn.execute(text("CREATE SCHEMA health_migration"))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.sqlite3'}")
    yield engine
    if url:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA health_migration CASCADE"))
    engine.dispose()


def test_migration_0016_adds_and_removes_the_warnings_table(empty_database):
    from alembic import command

    upgrade(empty_database, "0016")
    assert "certificate_warnings" in inspect(empty_database).get_table_names()
    with empty_database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO merchants (id, slug, name, timezone, currency, language, created_at)"
                " VALUES (1, 'm', 'M', 'UTC', 'EUR', 'en', CURRENT_TIMESTAMP)"
            )
        )

    cfg = alembic_config()
    with empty_database.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0014")
    tables = inspect(empty_database).get_table_names()
    assert "certificate_warnings" not in tables
    assert "merchants" in tables

    upgrade(empty_database, "0016")
    assert "certificate_warnings" in inspect(empty_database).get_table_names()
