"""The process-wide runtime: settings, engine and session factory. Flask-free.

The web app, the worker and the CLI each build one ``Runtime``; it is the only object
that opens transactions (``runtime.transaction()``), so there is one place that commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from walletpass import db
from walletpass.config import Settings
from walletpass.ttlcache import TtlCache


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # Long-lived clients shared by job handlers (APNs connection, Google session...).
    services: dict[str, Any] = field(default_factory=dict)
    # API keys this process read recently (tenancy/apikeys.KeyCache: how long a revocation
    # made elsewhere lags).
    api_key_cache: TtlCache[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.api_key_cache = TtlCache(self.settings.api_key_cache_seconds)

    @classmethod
    def create(cls, settings: Settings, **engine_kwargs: Any) -> Runtime:
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = db.make_engine(settings.resolved_database_url, **engine_kwargs)
        return cls(settings=settings, engine=engine, sessions=db.make_sessionmaker(engine))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def transaction(
        self, merchant_id: int | None = None, *, readonly: bool = False
    ) -> Iterator[Session]:
        with db.transaction(self.sessions, merchant_id, readonly=readonly) as session:
            yield session

    @contextlib.contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for one statement that reads (:func:`walletpass.db.single_statement`)."""
        with db.single_statement(self.engine) as conn:
            yield conn

    def close(self) -> None:
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close):
                close()
        self.services.clear()
        self.engine.dispose()
