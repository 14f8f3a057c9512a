"""Shared fixtures: a real database (SQLite file, or PostgreSQL when
WALLETPASS_TEST_DATABASE_URL is set) migrated once per session and emptied after each
test, dev signing certificates, the app, a worker.

Under pytest-xdist each worker has a PostgreSQL database of its own, the URL's name with
the worker's id appended (``test_gw0``, ``test_gw1``...), created when missing; the
worker's WALLETPASS_TEST_DATABASE_URL names it, so tests and the commands they run that
read the variable use it too."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

sys.path.insert(0, str(Path(__file__).resolve().parent))

import walletpass.models
import walletpass.wiring  # noqa: F401 - registers every job handler, as the entry points do
from walletpass.config import Settings
from walletpass.db import Base, make_engine
from walletpass.migrate import stamp
from walletpass.resources import PASS_TEMPLATES_DIR
from walletpass.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent
PASS_TYPE_ID = "pass.test.walletpass"
TEAM_ID = "TESTTEAM01"


def _worker_database_url(url: str) -> str:
    """The xdist worker's own PostgreSQL database: two workers sharing one would drop
    each other's schema and empty each other's tables."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not (worker and url.startswith("postgresql")):
        return url
    parsed = make_url(url)
    if (parsed.database or "").endswith(f"_{worker}"):
        return url  # a process started by a test inherits the worker's URL
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


if os.environ.get("WALLETPASS_TEST_DATABASE_URL"):
    os.environ["WALLETPASS_TEST_DATABASE_URL"] = _worker_database_url(
        os.environ["WALLETPASS_TEST_DATABASE_URL"]
    )


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.is_blocked("xdist") or not pluginmanager.has_plugin("xdist"):
        # pyproject's addopts ask for --numprocesses 2; under `-p no:xdist` it is accepted
        # and ignored, so the tests run in this one process.
        parser.addoption("--numprocesses", help="ignored: pytest-xdist is not loaded")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = _test_db_url(None).startswith("postgresql")
    skip_pg = pytest.mark.skip(reason="needs WALLETPASS_TEST_DATABASE_URL=postgresql+psycopg://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    opener = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and getattr(opener, "drivers", None):
        from browser_support import describe_pages

        report.sections.append(("pages in the browser", describe_pages(opener.drivers)))


# Every pass the service builds in the tests is linted (walletpass.passes.lint): the
# builders are wrapped once, here, so a pass Wallet would refuse fails the test that made
# it, with the findings. In-process and cached by content (a pass fetched again is the same
# bytes), about 1 ms a new pass. A test that builds a deliberately broken pass says so
# with @pytest.mark.broken_pass.
_LINT_FAILURES: list[str] = []
_LINTED: dict[bytes, tuple[str, ...]] = {}


def _lint_built(zip_bytes: bytes) -> None:
    from walletpass.passes.lint import errors, lint_pkpass

    digest = hashlib.sha1(zip_bytes, usedforsecurity=False).digest()
    found = _LINTED.get(digest)
    if found is None:
        found = tuple(str(f) for f in errors(lint_pkpass(zip_bytes)))
        if len(_LINTED) > 10_000:
            _LINTED.clear()
        _LINTED[digest] = found
    _LINT_FAILURES.extend(found)


def _install_lint_hook() -> None:
    from walletpass.passes import pkpass

    def wrap(fn: Any, zip_of: Any) -> Any:
        @functools.wraps(fn)
        def linted(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            _lint_built(zip_of(out))
            return out

        return linted

    pkpass.build_pkpass = wrap(pkpass.build_pkpass, lambda parts: parts.zip_bytes)
    pkpass.assemble_pkpass = wrap(pkpass.assemble_pkpass, lambda data: data)
    pkpass.zip_signed = wrap(pkpass.zip_signed, lambda data: data)


_install_lint_hook()


@pytest.fixture(autouse=True)
def _lint_built_passes(request: pytest.FixtureRequest) -> Iterator[None]:
    _LINT_FAILURES.clear()
    yield
    failures = list(dict.fromkeys(_LINT_FAILURES))
    _LINT_FAILURES.clear()
    if failures and request.node.get_closest_marker("broken_pass") is None:
        pytest.fail(
            "a pass built in this test would not open in Wallet (walletpass.passes.lint):\n"
            + "\n".join(failures),
            pytrace=False,
        )


def _test_db_url(tmp: Path | None) -> str:
    url = os.environ.get("WALLETPASS_TEST_DATABASE_URL", "")
    if url:
        return url
    return f"sqlite:///{tmp / 'test.sqlite3'}" if tmp else "sqlite://"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _test_db_url(tmp_path_factory.mktemp("db"))
    if url.startswith("postgresql"):
        _create_database_if_missing(url)
    engine = make_engine(url)
    _reset_schema(engine)
    # The schema comes from the models; tests/test_migrations.py checks that the Alembic
    # migrations build exactly the same schema on both backends.
    Base.metadata.create_all(engine)
    # Stamped at head, so `walletpass init`/`demo` in a test finds it up to date.
    stamp(engine)
    engine.dispose()
    return url


def _create_database_if_missing(url: str) -> None:
    parsed = make_url(url)
    name = parsed.database
    for maintenance in ("postgres", "template1"):
        admin = create_engine(parsed.set(database=maintenance), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                exists = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                ).first()
                if not exists:
                    quoted = conn.dialect.identifier_preparer.quote(name)
                    conn.execute(text(f"CREATE DATABASE {quoted} TEMPLATE template0"))
            return
        except ProgrammingError as exc:  # created meanwhile by another run
            if getattr(exc.orig, "sqlstate", None) == "42P04":
                return
            raise
        except OperationalError:
            if maintenance == "template1":
                raise
        finally:
            admin.dispose()


def _reset_schema(engine) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from walletpass.certs.dev import create_dev_chain

    out = tmp_path_factory.mktemp("certs")
    create_dev_chain(out, PASS_TYPE_ID, TEAM_ID)
    return out


def make_settings(home: Path, database_url: str, certs_dir: Path, **overrides: Any) -> Settings:
    """The tests' settings (the settings fixture's, and a module-scoped app's)."""
    return Settings(
        home=home,
        database_url=database_url,
        public_url="https://wallet.example.test",
        secret_key="test-secret-key-not-for-production",
        certs_dir=certs_dir,
        templates_dir=PASS_TEMPLATES_DIR,
        pass_type_id=PASS_TYPE_ID,
        team_id=TEAM_ID,
        embedded_worker=False,
        **overrides,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str, certs_dir: Path) -> Settings:
    # The tests' webhook receivers listen on this machine.
    return make_settings(
        tmp_path, database_url, certs_dir, webhook_allowed_networks="127.0.0.0/8,::1"
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.create(settings)
    yield rt
    fetches = rt.services.pop("fetch_log", None)
    if fetches is not None:  # written before the tables are emptied, not after
        fetches.close()
    _empty_all_tables(rt)
    rt.close()


# A table with more rows than this is TRUNCATEd after a test; the others are DELETEd.
# TRUNCATE makes new files for every table and index it names: 0.1-0.3 s a test even with
# nothing in them, 115 s of a serial PostgreSQL run, against 12 s for all teardowns now.
# DELETE checks each row's foreign keys, slow for the 100,000 rows of the campaign scale
# test. Not a rolled-back transaction per test (SAVEPOINTs, SQLAlchemy's
# join_transaction_mode="create_savepoint"): measured on 378 tests that pass either way, it
# saves the DELETEs' ~3 ms a test, about 1 % of the suite, while 28 tests need committed
# rows (the CLI, threads and other connections, workers, Apple change tags, which are
# transaction ids) and would need marking, and a test would see one transaction's now() and
# ids that do not restart.
TRUNCATE_ABOVE_ROWS = 1000


def _empty_all_tables(rt: Runtime) -> None:
    """Every table emptied (children first) and its id sequence restarted, as
    ``TRUNCATE ... RESTART IDENTITY`` would, without paying TRUNCATE for empty tables."""
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name != "change_counter"]
    with rt.engine.begin() as conn:
        if rt.engine.dialect.name != "postgresql":
            for table in tables:
                conn.execute(text(f"DELETE FROM {table.name}"))  # noqa: S608
            return
        rows = conn.execute(
            text(
                " UNION ALL ".join(
                    f"SELECT {i}, (SELECT count(*) FROM (SELECT FROM {table.name} "  # noqa: S608
                    f"LIMIT {TRUNCATE_ABOVE_ROWS + 1}) AS r)"
                    for i, table in enumerate(tables)
                )
            )
        ).all()
        counts = {tables[i].name: n for i, n in rows}
        big = [name for name, n in counts.items() if n > TRUNCATE_ABOVE_ROWS]
        if big:
            conn.execute(text(f"TRUNCATE {', '.join(big)} CASCADE"))
        for table in tables:
            if counts[table.name] and table.name not in big:
                conn.execute(text(f"DELETE FROM {table.name}"))  # noqa: S608
        serial = [
            (table.name, column.name)
            for table in tables
            for column in table.primary_key.columns
            if column.autoincrement in (True, "auto") and len(table.primary_key.columns) == 1
        ]
        conn.execute(
            text(
                "SELECT setval(seq, 1, false) FROM (SELECT pg_get_serial_sequence(t, c) AS seq"
                " FROM unnest(CAST(:tables AS text[]), CAST(:columns AS text[])) AS v(t, c)) AS s"
                " WHERE seq IS NOT NULL AND pg_sequence_last_value(seq::regclass) IS NOT NULL"
            ),
            {"tables": [t for t, _ in serial], "columns": [c for _, c in serial]},
        )


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    from walletpass.app import create_app

    application = create_app(runtime=runtime, start_worker=False)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def worker(runtime: Runtime):  # type: ignore[no-untyped-def]
    from walletpass.jobs.worker import Worker

    return Worker(runtime, name="test-worker")


@pytest.fixture
def card(runtime: Runtime, settings: Settings) -> dict[str, object]:
    """A member's loyalty card with its pass (what the Apple web-service tests drive)."""
    import factories

    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        mem = factories.member(s, p, points_balance=10)
        row = factories.member_pass(s, settings, mem)
        return {
            "serial": row.serial,
            "token": row.auth_token,
            "id": row.id,
            "type": row.pass_type_id,
            "member_id": mem.id,
            "merchant_id": m.id,
        }


@pytest.fixture(scope="session")
def apns_pki(tmp_path_factory: pytest.TempPathFactory, certs_dir: Path) -> Any:
    """Certificates for the APNs stand-in; its client CAs include the dev CA, so it
    accepts the service's own pass certificate as client certificate."""
    from standins.tls import make_test_pki

    pki = make_test_pki(tmp_path_factory.mktemp("apns-pki"), pass_type_id=PASS_TYPE_ID)
    client_cas = pki.directory / "client-cas.pem"
    client_cas.write_bytes(pki.ca_cert.read_bytes() + (certs_dir / "ca.pem").read_bytes())
    return pki


@pytest.fixture
def apns(apns_pki: Any) -> Iterator[Any]:
    """A fresh HTTP/2 + TLS APNs stand-in for one test (nothing received, no rules).

    One per test rather than per session: a stand-in shared across tests made a
    campaign test flaky (counts from an earlier test's connections).
    """
    from standins.apns_server import ApnsStandIn

    standin = ApnsStandIn(
        apns_pki.directory / "client-cas.pem",
        apns_pki.server_cert,
        apns_pki.server_key,
        topic=PASS_TYPE_ID,
    )
    standin.start()
    standin.pki = apns_pki  # type: ignore[attr-defined]
    yield standin
    standin.stop()
