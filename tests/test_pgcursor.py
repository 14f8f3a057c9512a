"""The PostgreSQL cursor that builds a result shape's description once."""

from __future__ import annotations

import pytest

from walletpass.db import make_engine
from walletpass.pgcursor import DescribedCursor

pytestmark = pytest.mark.postgres


def test_descriptions_follow_each_results_shape(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            cur = raw.cursor()
            assert isinstance(cur, DescribedCursor)

            cur.execute("SELECT 1::int AS a, 'x'::varchar(5) AS b")
            first = cur.description
            assert first is not None
            assert [(c.name, c.type_code, c.internal_size) for c in first] == [
                ("a", 23, 4),
                ("b", 1043, None),
            ]
            assert first[1].display_size == 5
            cur.execute("SELECT 2::int AS a, 'y'::varchar(5) AS b")
            again = cur.description
            # Shared columns, but a list of the caller's own.
            assert again == first and again is not first
            assert again is not None and again[0] is first[0]
            again.clear()
            assert len(cur.description or []) == 2

            # Same names, other types or modifiers: other columns.
            cur.execute("SELECT 'z'::text AS a, 'y'::varchar(9) AS b")
            other = cur.description
            assert other is not None
            assert other[0].type_code == 25 and other[1].display_size == 9

            # No result set, and an empty SELECT list.
            cur.execute("CREATE TEMPORARY TABLE t (x int)")
            assert cur.description is None
            cur.execute("SELECT")
            assert cur.description == []
            conn.rollback()
    finally:
        engine.dispose()
