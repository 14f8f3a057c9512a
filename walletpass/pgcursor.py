"""A psycopg cursor whose ``description`` is built once per result shape.

psycopg builds a new ``Column`` object for every column each time ``description`` is
read, and SQLAlchemy reads it for every result it sets up, even when its own result
metadata is cached. A till scan reads 88 columns; building them was about a tenth of a
scan's Python time (cProfile, in-process). Columns are immutable values, so results of the
same shape (names, types, modifiers, sizes) on one connection share them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq

_TUPLES = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK)
# Shapes kept per connection: the application's statements are a fixed set, so this only
# bounds ad hoc queries (the CLI's, a migration's).
MAX_SHAPES = 512


class DescribedCursor(psycopg.Cursor[Any]):
    __slots__ = ()

    @property
    def description(self) -> list[psycopg.Column] | None:
        res = self.pgresult
        if res is None or not (res.nfields or res.status in _TUPLES):
            return super().description
        key = tuple(
            [(res.fname(i), res.ftype(i), res.fmod(i), res.fsize(i)) for i in range(res.nfields)]
        )
        # Per connection: a Column carries the type information of its connection's
        # adapters, and the encoding its names were decoded with.
        shapes: dict[tuple[Any, ...], list[psycopg.Column]] = self.connection.__dict__.setdefault(
            "_walletpass_shapes", {}
        )
        columns = shapes.get(key)
        if columns is None:
            columns = super().description or []
            if len(shapes) >= MAX_SHAPES:
                shapes.clear()
            shapes[key] = columns
        # A new list each time: a caller may change the one it gets.
        return list(columns)
