"""SQLAlchemy base, column types, engine and session factory; the only module that commits."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    CursorResult,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Result,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for ids that grow.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. Session.execute is typed as returning a
    Result; a DML statement's is a CursorResult, which has the count."""
    assert isinstance(result, CursorResult)
    return result.rowcount


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


int_pk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]
created_at = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow, nullable=False)]
str64 = Annotated[str, mapped_column(String(64))]
str200 = Annotated[str, mapped_column(String(200))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JsonType,
        list[dict[str, Any]]: JsonType,
        list[str]: JsonType,
    }

    if TYPE_CHECKING:
        # Every model maps one Table (DeclarativeBase types it as any FromClause), so the
        # bulk paths' Core insert() and update() on Model.__table__ type-check.
        __table__: ClassVar[Table]

    def __repr__(self) -> str:
        mapper = self.__mapper__
        keys = (mapper.get_property_by_column(c).key for c in mapper.primary_key)
        pk = ", ".join(f"{key}={getattr(self, key, None)!r}" for key in keys)
        return f"<{type(self).__name__} {pk}>"


class MerchantOwned:
    """Mixin for every tenant row. Sessions opened for a merchant filter these automatically."""

    # False on a table whose own composite index starts with merchant_id: a single-column
    # index beside it serves no query the composite cannot, and costs an index entry (and
    # its WAL) on every row written, which on the ledger and the scan log is every scan.
    merchant_id_indexed: ClassVar[bool] = True

    @declared_attr
    def merchant_id(cls) -> Mapped[int]:
        return mapped_column(
            BigId,
            ForeignKey("merchants.id", ondelete="CASCADE"),
            index=cls.merchant_id_indexed,
            nullable=False,
        )


@event.listens_for(Session, "do_orm_execute")
def _scope_to_merchant(state: ORMExecuteState) -> None:
    # Tenant isolation by construction: a session bound to a merchant can only ever
    # load that merchant's rows, whatever query a view or service writes.
    merchant_id = state.session.info.get("merchant_id")
    if merchant_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("all_merchants", False):
        return
    if state.execution_options.get(_SCOPED_BY_PARAMETER, False):
        # Built by scoped_to_merchant(): the same criteria are in it already, bound to a
        # parameter, which must name this session's merchant.
        # An executemany's parameters are a list of rows, which no one row speaks for.
        params = state.parameters
        given = params.get(MERCHANT_PARAMETER) if isinstance(params, Mapping) else None
        if given != merchant_id or state.is_executemany:
            raise ValueError(f"{MERCHANT_PARAMETER} must be this session's merchant")
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            MerchantOwned,
            lambda cls: cls.merchant_id == merchant_id,
            include_aliases=True,
            track_closure_variables=False,
        )
    )


MERCHANT_PARAMETER = "scoped_merchant_id"
_SCOPED_BY_PARAMETER = "walletpass_scoped_by_parameter"
_MERCHANT: BindParameter[int] = bindparam(MERCHANT_PARAMETER)
_Statement = TypeVar("_Statement", bound=Executable)


def scoped_to_merchant(statement: _Statement) -> _Statement:
    """``statement`` with the session's tenant filter built in: the same criteria on every
    merchant-owned entity in it, with the merchant as the bound parameter
    :data:`MERCHANT_PARAMETER`, which a session bound to a merchant requires to be its own.

    For a statement built once and run on every request (a till scan's first query): the
    filter added at each execution makes a new statement, whose cache key SQLAlchemy then
    computes again, about 0.6 ms of a scan's joined select; built in, it is computed once.
    """
    return statement.options(
        with_loader_criteria(
            MerchantOwned,
            lambda cls: cls.merchant_id == _MERCHANT,
            include_aliases=True,
        )
    ).execution_options(**{_SCOPED_BY_PARAMETER: True})


def make_engine(url: str, **kwargs: Any) -> Engine:
    # A database error's message would otherwise carry the statement's parameters (a
    # member's name, email, phone) into the error logs and the jobs' last_error.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the embedded worker thread read while a request writes;
            # foreign keys are off by default in SQLite.
            # Hand transaction control to SQLAlchemy's "begin" event below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A writer takes the write lock up front (BEGIN IMMEDIATE): two deferred
            # transactions that both read and then write would deadlock on the upgrade.
            # A read-only one must not queue behind writers: WAL gives it a snapshot.
            options = conn.get_execution_options()
            if options.get(SINGLE_STATEMENT) or options.get("isolation_level") == "AUTOCOMMIT":
                return  # one statement, its own transaction (single_statement)
            if options.get("walletpass_readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if url.startswith("postgresql+psycopg"):
        connect_args = kwargs.setdefault("connect_args", {})
        # An unreachable host fails start-up in seconds, not after the kernel's timeout.
        connect_args.setdefault("connect_timeout", 10)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


# A connection back in use within this many seconds is not pinged first.
PING_AFTER_IDLE_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    ``pool_pre_ping`` would cost a round trip on every checkout, one in twelve of a till
    scan's. Connections die while idle (a server restart, a proxy's idle timeout); one
    that dies while in use fails that transaction, which rolls back, and the pool then
    drops it. A failed ping makes the pool retry with a fresh connection.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["walletpass_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("walletpass_idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def make_sessionmaker(bind: Engine | Connection) -> sessionmaker[Session]:
    # A Connection too: a job's side transactions bind to whatever its session is bound to.
    return sessionmaker(bind=bind, expire_on_commit=False)


# session.info's key for a read-only transaction.
READONLY = "walletpass_readonly"


@contextlib.contextmanager
def transaction(
    factory: sessionmaker[Session], merchant_id: int | None = None, *, readonly: bool = False
) -> Iterator[Session]:
    """The unit of work: one session, committed once on success, rolled back on error.

    :param merchant_id: bind the session to one tenant; every ORM query is then scoped.
    :param readonly: the work only reads (on SQLite it then does not take the write lock).
    """
    session = factory()
    if readonly:
        session.connection(execution_options={"walletpass_readonly": True})
        # What it reads cannot change under it by its own hand (walletpass.cards.memo).
        session.info[READONLY] = True
    if merchant_id is not None:
        session.info["merchant_id"] = merchant_id
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# The execution option single_statement sets on SQLite: no BEGIN for this connection.
SINGLE_STATEMENT = "walletpass_single_statement"


@contextlib.contextmanager
def single_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for a read of one statement, which is its own transaction: no BEGIN,
    no COMMIT, no session. For the hot reads a wallet makes after a push (a fetch of a
    kept pass, a 304, a device's listing), where the two round trips and the session's
    bookkeeping were half of what the request cost the database side. Anything that
    reads twice and needs both reads to agree uses :func:`transaction`.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # The driver is already in autocommit (the connect hook hands BEGIN to the
            # hook above, which this option skips). Setting AUTOCOMMIT would cost two
            # PRAGMA statements a read, one in and one on return to the pool: a sixth of
            # a pass fetch's work.
            yield conn.execution_options(**{SINGLE_STATEMENT: True})
        else:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")


__all__ = [
    "MERCHANT_PARAMETER",
    "Base",
    "BigId",
    "JsonType",
    "Mapped",
    "MerchantOwned",
    "UTCDateTime",
    "created_at",
    "func",
    "int_pk",
    "make_engine",
    "make_sessionmaker",
    "mapped_column",
    "rowcount",
    "scoped_to_merchant",
    "str64",
    "str200",
    "transaction",
    "utcnow",
]
