"""Hot-path statements run straight on the driver's cursor.

A till scan runs four statements. Through ``Connection.execute`` each costs about 0.1 ms
of Python on top of the driver's own work (SQLAlchemy's execution context, parameter
construction, result metadata and row objects) though its compiled form is cached; the
session-level ``Session.execute`` adds more. :class:`Direct` does that work once per
statement and dialect (the SQL string, each parameter's bind processor, each result
column's result processor) and then only runs the driver's cursor, inside the session's
own transaction. Statements stay SQLAlchemy constructs, written once for both backends.

What SQLAlchemy does around an execution that still matters here is kept: driver errors
come out as SQLAlchemy's exception types (callers catch ``IntegrityError``), and a
connection found dead is invalidated so the pool does not hand it out again. What is
not kept: ``before_cursor_execute`` events and statement logging (``echo``).
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None
_REQUIRED = object()


class _Plan:
    """One statement compiled for one dialect."""

    __slots__ = ("binds", "columns", "dialect", "positional", "results", "row", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
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
        # A select's columns, or an INSERT/UPDATE's RETURNING; none known for bare text().
        self.columns = list(getattr(statement, "exported_columns", ()) or ())
        self.dialect = dialect
        # Settled by the first result: processors need the driver's type codes.
        self.row: Any = None
        self.results: list[Processor] | None = None

    def settle(self, description: Any) -> None:
        """Name the rows and pick each column's result processor, as SQLAlchemy does for
        a result (the statement's column types, the driver's type codes)."""
        if not self.columns:
            # Bare text(): the rows are named as the server named them, values as given.
            names = [d[0] for d in description]
            self.results = None
        else:
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


class Direct:
    """A Core or text statement, compiled once per dialect and run on the DBAPI cursor of
    the caller's connection (so inside its transaction)."""

    __slots__ = ("_lock", "_plans", "statement")

    def __init__(self, statement: ClauseElement) -> None:
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
        """The statement's rows (named tuples, by the statement's column keys; empty for
        a statement that returns none)."""
        dialect = conn.dialect
        plan = self._plan(dialect)
        args = plan.args(params)
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(plan.sql, args)
            # A statement's result shape is fixed: once settled, ``description`` (which
            # psycopg rebuilds on every read) is not asked again.
            if plan.row is None:
                description = cursor.description
                if description is None:
                    return []
                plan.settle(description)
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

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        found = self.rows(conn, params)
        if len(found) > 1:
            raise ValueError("more than one row where one or none was expected")
        return found[0] if found else None

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        self.rows(conn, params)
