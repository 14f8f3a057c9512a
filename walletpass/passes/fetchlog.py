"""Fetches of passes, written to ``pass_events`` in batches rather than one per fetch.

A fetch is the campaigns' "delivered" proxy (walletpass.campaigns.results), so it is
kept; but a write per fetch would double what the herd of fetches after a push costs and,
on SQLite, queue every fetch for the one write lock. Each process gathers its fetches in
memory, with the moment of each, and a thread writes them in one statement every
:attr:`FetchLog.seconds` or :attr:`FetchLog.rows` fetches, and when the process stops
(``Runtime.close``, or the interpreter's exit). A process killed outright loses the
fetches of its last seconds: a proxy's count, never a balance, a pass or a push.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, bindparam, exists, insert, literal, select

from walletpass.db import UTCDateTime, utcnow
from walletpass.passes.models import Pass, PassEvent
from walletpass.runtime import Runtime

log = logging.getLogger(__name__)

# Fetches held while the database refuses them (an outage): beyond this the oldest go,
# counted in ``dropped``, rather than the process's memory.
MOST_HELD = 100_000


@dataclass(frozen=True)
class Fetch:
    merchant_id: int
    pass_id: int
    version: int
    at: datetime
    platform: str = "apple"


class FetchLog:
    """One process's fetches on their way to ``pass_events``."""

    def __init__(self, runtime: Runtime, *, seconds: float = 2.0, rows: int = 500) -> None:
        self.runtime = runtime
        self.seconds = seconds
        self.rows = rows
        self.dropped = 0
        self._held: list[Fetch] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def record(self, merchant_id: int, pass_id: int, version: int) -> None:
        """Note a fetch of ``version`` now; it reaches the database within seconds."""
        with self._lock:
            self._held.append(Fetch(merchant_id, pass_id, version, utcnow()))
            full = len(self._held) >= self.rows
            if self._pid != os.getpid():  # first use in this process (gunicorn forks)
                self._start()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is held now; returns how many fetches were written."""
        with self._flushing:
            with self._lock:
                held, self._held = self._held, []
            if not held:
                return 0
            try:
                with self.runtime.transaction() as session:
                    session.connection().execute(
                        _INSERT_IF_THE_PASS_IS_THERE,
                        [
                            {
                                "merchant_id": f.merchant_id,
                                "pass_id": f.pass_id,
                                "platform": f.platform,
                                "version": f.version,
                                "created_at": f.at,
                            }
                            for f in held
                        ],
                    )
            except Exception:
                log.exception("could not write %d pass fetches; kept for the next try", len(held))
                with self._lock:
                    self._held[:0] = held
                    excess = len(self._held) - MOST_HELD
                    if excess > 0:
                        del self._held[:excess]
                        self.dropped += excess
                return 0
            return len(held)

    def close(self) -> None:
        """Stop the thread and write what is left (``Runtime.close`` calls this)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.flush()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="walletpass-fetch-log", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit, self._pid)

    def _at_exit(self, pid: int) -> None:
        if pid == os.getpid():  # not in a child forked after this was registered
            self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the thread die: the next round tries again
                log.exception("pass fetch log flush failed")


# A pass deleted since its fetch (a member erased) has no event to keep: its row would
# break the foreign key and, failing the statement, hold back every other fetch with it.
_INSERT_IF_THE_PASS_IS_THERE = insert(PassEvent.__table__).from_select(
    ["merchant_id", "pass_id", "platform", "kind", "version", "created_at"],
    select(
        bindparam("merchant_id", type_=BigInteger),
        bindparam("pass_id", type_=BigInteger),
        bindparam("platform", type_=String),
        literal("fetched", String),
        bindparam("version", type_=Integer),
        bindparam("created_at", type_=UTCDateTime()),
    ).where(exists().where(Pass.__table__.c.id == bindparam("pass_id", type_=BigInteger))),
)


def fetch_log(runtime: Runtime) -> FetchLog:
    """This runtime's fetch log (one per process, kept in ``runtime.services``)."""
    found = runtime.services.get("fetch_log")
    if found is None:
        found = runtime.services.setdefault(
            "fetch_log",
            FetchLog(runtime, seconds=runtime.settings.fetch_log_seconds),
        )
    return found
