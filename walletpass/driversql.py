"""The till scan's two writing statements, run on the driver's cursor of the session's
connection, unless something watches the statements.

Why it exists, measured (issue 17): a purchase scan runs three statements and a commit.
Through ``Connection.execute`` each statement costs SQLAlchemy's execution context,
parameter construction, result metadata and row objects, and psycopg rebuilds the
cursor's ``description`` (one Python object per column) each time SQLAlchemy reads it.
For the ledger's post-and-bump and the scan log's insert that was 300 us of a 2.8 ms scan
in-process (1,600 scans on PostgreSQL, the two statements 601 -> 420 us and 341 -> 215 us);
under gunicorn the gap was larger. :class:`DriverStatement` does that work once per
statement and dialect (the SQL string, each parameter's bind processor, each result
column's result processor, the row shape) and then only runs the cursor, inside the
session's own transaction.

What it keeps: the statement is a SQLAlchemy construct compiled by SQLAlchemy, so the SQL
is never written by hand; driver errors come out as SQLAlchemy's exception types (callers
catch ``IntegrityError``); a connection found dead is invalidated so the pool drops it.
What it would lose, statement logging (``echo``) and the cursor-execute events tracing
tools listen to, it does not: while an engine echoes, logs ``sqlalchemy.engine`` at INFO
or has a ``before_cursor_execute`` / ``after_cursor_execute`` listener, the statement runs
through ``Connection.execute`` as any other, and is seen.
"""

from __future__ import annotations

import logging
import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None
_REQUIRED = object()
_ENGINE_LOG = logging.getLogger("sqlalchemy.engine")


def _watched(conn: Connection) -> bool:
    """Does anything look at this connection's statements (echo, logging, listeners)?"""
    dispatch = conn.dispatch
    return bool(
        conn.engine.echo
        or _ENGINE_LOG.isEnabledFor(logging.INFO)
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
    )


class _Plan:
    """One statement compiled for one dialect."""

    __slots__ = ("binds", "columns", "dialect", "positional", "results", "row", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        self.sql = compiled.string
        self.positional = compiled.positional
        # (name rendered in the SQL, the caller's key, bind processor, value if not given)
        binds = []
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError(f"{bind.key}: expanding (IN) parameters are not supported")
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            given = _REQUIRED if bind.required else bind.effective_value
            binds.append((name, bind.key, proc, given))
        if self.positional:
            # qmark (SQLite): one value per placeholder, in order, repeats included.
            by_name = {b[0]: b for b in binds}
            binds = [by_name[name] for name in compiled.positiontup or ()]
        self.binds = binds
        # A select's columns, or a text statement's declared ones (.columns()).
        self.columns = list(getattr(statement, "exported_columns", ()) or ())
        self.dialect = dialect
        # Settled by the first result: result processors need the driver's type codes.
        self.row: Any = None
        self.results: list[Processor] | None = None

    def settle(self, description: Any) -> None:
        """Name the rows and pick each column's result processor, as SQLAlchemy does for
        a result (the statement's column types, the driver's type codes)."""
        if len(self.columns) != len(description):
            raise ValueError(
                f"the statement names {len(self.columns)} columns, the result has "
                f"{len(description)}"
            )
        names = [col.key or f"c{i}" for i, col in enumerate(self.columns)]
        procs = [
            col.type.dialect_impl(self.dialect).result_processor(self.dialect, d[1])
            for col, d in zip(self.columns, description, strict=True)
        ]
        # None when no column needs one: rows are then built as they come.
        self.results = procs if any(procs) else None
        self.row = namedtuple("Row", names, rename=True)  # type: ignore[misc]

    def args(self, params: Mapping[str, Any]) -> Any:
        values = []
        for name, key, proc, default in self.binds:
            if key in params:
                value = params[key]
            elif default is _REQUIRED:
                raise KeyError(f"a value is required for the parameter {key!r}")
            else:
                value = default
            # Called with None too, as SQLAlchemy does (a JSON column's None is 'null').
            values.append((name, value if proc is None else proc(value)))
        if self.positional:
            return [value for _, value in values]
        return dict(values)


class DriverStatement:
    """A Core select or a text statement with declared columns, compiled once per dialect
    and run on the DBAPI cursor of the caller's connection (so inside its transaction).

    Only what the statement says is sent: Python-side column defaults are not applied, so
    an INSERT names every column it needs.
    """

    __slots__ = ("_lock", "_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        if not list(getattr(statement, "exported_columns", ()) or ()):
            raise ValueError("a DriverStatement returns rows: declare its columns")
        self.statement = statement
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._lock = threading.Lock()

    def _plan(self, dialect: Dialect) -> _Plan:
        # By driver too: two drivers of one database may differ in parameter style.
        key = (dialect.name, dialect.driver)
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key) or _Plan(self.statement, dialect)
                self._plans[key] = plan
        return plan

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """The statement's rows, each with its columns by key and by position."""
        if _watched(conn):
            return list(conn.execute(self.statement, dict(params)).all())
        dialect = conn.dialect
        plan = self._plan(dialect)
        args = plan.args(params)
        dbapi_conn = conn.connection.dbapi_connection
        if dbapi_conn is None:
            raise RuntimeError("the connection is closed")
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(plan.sql, args)
            # A statement's result shape is fixed: once settled, ``description`` (which
            # psycopg rebuilds on every read) is not asked again.
            if plan.row is None:
                plan.settle(cursor.description)
            data = cursor.fetchall()
        except dialect.loaded_dbapi.Error as exc:
            dead = dialect.is_disconnect(exc, dbapi_conn, cursor)
            if dead:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                plan.sql,
                args,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=conn.engine.hide_parameters,
                connection_invalidated=dead,
                dialect=dialect,
            ) from exc
        finally:
            cursor.close()
        make, procs = plan.row._make, plan.results
        if procs is not None:
            return [
                make([v if p is None else p(v) for p, v in zip(procs, r, strict=True)])
                for r in data
            ]
        return [make(r) for r in data]
