"""The Alembic migrations build exactly the models' schema (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
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


def test_existing_stamp_cards_get_their_rewards_as_catalogue_rows(empty_database):
    """0005: a stamp program made before it gets its goal and intermediate rewards as rows
    the till can redeem; a points program gets none."""
    upgrade(empty_database, "0004")
    rules = json.dumps(
        {
            "goal": 10,
            "reward_name": "Free coffee",
            "intermediate_rewards": [{"at": 5, "name": "Free cookie"}],
        }
    )
    with empty_database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO merchants (id, slug, name, timezone, currency, language, created_at)"
                " VALUES (1, 'm', 'M', 'UTC', 'EUR', 'en', CURRENT_TIMESTAMP)"
            )
        )
        for pid, kind, body in ((1, "stamps", rules), (2, "points", '{"amount_per_point": "1"}')):
            conn.execute(
                text(
                    "INSERT INTO programs (id, merchant_id, slug, name, kind, template, rules,"
                    " design, active, google_class_version, created_at) VALUES (:id, 1, :slug,"
                    " 'P', :kind, 'stamp_card', :rules, '{}', true, 0, CURRENT_TIMESTAMP)"
                ),
                {"id": pid, "slug": f"p{pid}", "kind": kind, "rules": body},
            )
    upgrade(empty_database)
    with empty_database.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT program_id, name, cost_points, card_stamps, active FROM rewards"
                " ORDER BY card_stamps"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "Free cookie", 0, 5, True),
        (1, "Free coffee", 10, 10, True),
    ]


def _downgrade(engine, revision: str) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from walletpass.migrate import alembic_config

    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def test_texts_per_language_keep_every_row_up_and_down(empty_database):
    """0014: programs, rewards and offers get ``translations``, {} for the rows there, and
    lose it on the way down; no row is lost either way (a SQLite table copy would cascade
    a program's deletion to its rewards)."""
    upgrade(empty_database, "0013")
    with empty_database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO merchants (id, slug, name, timezone, currency, language, created_at)"
                " VALUES (1, 'm', 'M', 'UTC', 'EUR', 'el', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO programs (id, merchant_id, slug, name, kind, template, rules,"
                " design, active, google_class_version, created_at) VALUES (1, 1, 'p',"
                " 'Coffee club', 'points', 'points_tiers', '{\"amount_per_point\": \"1\"}',"
                " '{}', true, 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO rewards (merchant_id, program_id, name, kind, cost_points, active,"
                " description, created_at) VALUES (1, 1, 'Free coffee', 'item', 10, true, '',"
                " CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO offers (merchant_id, slug, title, description, terms, discount,"
                " uses_per_coupon, redeemed_count, overlay, active, created_at) VALUES (1, 'o',"
                " 'Half price', '', '', '{}', 1, 0, false, true, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(empty_database, "0014")
    with empty_database.connect() as conn:
        for table in ("programs", "rewards", "offers"):
            found = conn.execute(text(f"SELECT translations FROM {table}")).scalar_one()  # noqa: S608
            assert (json.loads(found) if isinstance(found, str) else found) == {}
    _downgrade(empty_database, "0013")
    with empty_database.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
            for t in ("programs", "rewards", "offers")
        ]
        assert counts == [1, 1, 1]
        columns = conn.execute(text("SELECT * FROM programs")).keys()
        assert "translations" not in columns
