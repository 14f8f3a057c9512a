"""Start-up checks: the database answers and its schema is the one this code needs.

Each failure is one line that names the setting to fix, instead of a driver traceback
on the first request. The commands check before they start (``open_runtime`` in the
CLI); the web app builds anyway and answers 503 until the database is ready
(:class:`Readiness`), so a server started before ``walletpass init`` recovers by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from walletpass.config import SettingError
from walletpass.migrate import schema_state

log = logging.getLogger(__name__)


class NotReady(SettingError):
    """The database cannot be used yet; the message says why and what to do."""


def check_connection(engine: Engine) -> None:
    """:raise NotReady: naming WALLETPASS_DATABASE_URL and the reason, in one line."""
    try:
        with _reading(engine) as connection:
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        raise NotReady(describe_connect_error(engine, exc)) from None


def check_schema(engine: Engine) -> None:
    """:raise NotReady: when the schema is older than the code (``walletpass init``)."""
    with _reading(engine) as connection:
        state = schema_state(connection)
    if state.behind:
        raise NotReady(state.describe())
    if not state.known:
        # Older code on a newer schema usually works (migrations add); say so once.
        log.warning("%s", state.describe())


def _reading(engine: Engine) -> Connection:
    # Read-only: on SQLite a check must not take the write lock (db.make_engine's BEGIN
    # IMMEDIATE) and so queue behind, or hold up, a writer.
    return engine.connect().execution_options(walletpass_readonly=True)


def require_ready(engine: Engine) -> None:
    check_connection(engine)
    check_schema(engine)


def describe_connect_error(engine: Engine, exc: DBAPIError) -> str:
    url = engine.url
    reason = str(exc.orig).strip()
    first = reason.splitlines()[0] if reason else type(exc.orig).__name__
    prefix = "WALLETPASS_DATABASE_URL:"
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").expanduser().absolute()
        folder = path.parent
        if not folder.exists():
            return f"{prefix} cannot create the SQLite file {path}: folder {folder} does not exist"
        if not folder.is_dir():
            return f"{prefix} cannot create the SQLite file {path}: {folder} is not a folder"
        return f"{prefix} cannot open the SQLite file {path} ({first}); is it writable?"
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    lowered = reason.lower()
    if "does not exist" in lowered and "database" in lowered:
        return (
            f"{prefix} the database {url.database!r} does not exist on {where}; create it "
            f"(createdb -h {url.host or 'localhost'} {url.database}) or fix the URL"
        )
    if "connection refused" in lowered:
        return f"{prefix} nothing accepts connections at {where} (connection refused)"
    if "translate host name" in lowered or "name or service not known" in lowered:
        return f"{prefix} unknown host {url.host!r}"
    if "timeout" in lowered or "timed out" in lowered:
        return f"{prefix} no answer from {where} (timed out)"
    if "authentication failed" in lowered or ("role" in lowered and "does not exist" in lowered):
        return f"{prefix} PostgreSQL at {where} refused user {url.username!r}: {first}"
    return f"{prefix} cannot connect to {where}: {first}"


class Readiness:
    """Whether this web process may serve requests.

    Once ready it stays ready and costs nothing per request. Until then the check runs
    again at most every ``recheck_s`` seconds, so a server started before the database
    was migrated (or while it was down) comes up without a restart.
    """

    def __init__(self, engine: Engine, recheck_s: float = 5.0) -> None:
        self._engine = engine
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._problem: str | None = "not checked yet"
        self._checked_at = float("-inf")
        self._ready = False

    def problem(self) -> str | None:
        """None when ready; otherwise why not, in one line."""
        if self._ready:
            return None
        with self._lock:
            if not self._ready and time.monotonic() - self._checked_at >= self._recheck_s:
                self._checked_at = time.monotonic()
                try:
                    require_ready(self._engine)
                except NotReady as exc:
                    if str(exc) != self._problem:
                        log.error("not serving: %s", exc)
                    self._problem = str(exc)
                else:
                    if self._problem != "not checked yet":
                        log.info("database ready; serving")
                    self._problem = None
                    self._ready = True
            return self._problem

    def wait(self, stop: threading.Event) -> bool:
        """Block until ready or ``stop`` is set; True when ready."""
        while not stop.is_set():
            if self.problem() is None:
                return True
            stop.wait(self._recheck_s)
        return False
