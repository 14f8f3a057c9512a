"""Start-up as an operator meets it: a database that cannot be used stops every command
with one line naming WALLETPASS_DATABASE_URL; a schema behind the code stops the worker
and makes the web app answer 503 (``/healthz`` says to run ``walletpass init``) until it
is migrated; ``serve`` prints its address once it listens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url

from walletpass.app import create_app
from walletpass.cli import main
from walletpass.config import Settings
from walletpass.db import make_engine
from walletpass.migrate import head_revision, upgrade
from walletpass.runtime import Runtime

ON_POSTGRES = os.environ.get("WALLETPASS_TEST_DATABASE_URL", "").startswith("postgresql")


def run_cli(tmp_path: Path, database_url: str, *args: str):  # type: ignore[no-untyped-def]
    env = {"WALLETPASS_HOME": str(tmp_path / "home"), "WALLETPASS_DATABASE_URL": database_url}
    return CliRunner().invoke(main, list(args), env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [("init",), ("worker", "--once"), ("demo", "--json")])
@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "sqlite:///{tmp}/no/such/folder/w.sqlite3",
            "cannot create the SQLite file {tmp}/no/such/folder/w.sqlite3: folder "
            "{tmp}/no/such/folder does not exist",
        ),
        (
            "sqlite:///{tmp}/a-file/w.sqlite3",
            "cannot create the SQLite file {tmp}/a-file/w.sqlite3: {tmp}/a-file is not a folder",
        ),
        (
            # /proc refuses new files even to root, unlike a folder without write bits.
            "sqlite:////proc/walletpass-test.sqlite3",
            "cannot open the SQLite file /proc/walletpass-test.sqlite3 (unable to open "
            "database file); is it writable?",
        ),
        (
            "postgresql+psycopg://postgres@127.0.0.1:{closed_port}/test",
            "nothing accepts connections at 127.0.0.1:{closed_port} (connection refused)",
        ),
        (
            "postgresql+psycopg://postgres@walletpass-test.invalid/test",
            "unknown host 'walletpass-test.invalid'",
        ),
    ],
)
def test_a_database_that_cannot_be_used_stops_the_command_in_one_line(
    tmp_path, url, message, command
):  # type: ignore[no-untyped-def]
    (tmp_path / "a-file").write_text("not a folder")
    values = {"tmp": tmp_path, "closed_port": free_port()}
    result = run_cli(tmp_path, url.format(**values), *command)
    assert result.exit_code == 1
    assert result.output == f"Error: WALLETPASS_DATABASE_URL: {message.format(**values)}\n"


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_named_with_how_to_create_it(tmp_path):
    url = make_url(os.environ["WALLETPASS_TEST_DATABASE_URL"]).set(database="walletpass_absent")
    result = run_cli(tmp_path, url.render_as_string(hide_password=False), "init")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: WALLETPASS_DATABASE_URL: the database 'walletpass_absent' does not exist on "
        f"{url.host}:{url.port or 5432}; create it (createdb -h {url.host} walletpass_absent) "
        "or fix the URL\n"
    )


@pytest.fixture
def old_database_url(tmp_path):  # type: ignore[no-untyped-def]
    """An empty database of its own (a schema of its own on PostgreSQL), for migrating."""
    url = os.environ.get("WALLETPASS_TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    schema = f"startup_{os.getpid()}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield scoped.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def migrate_to(url: str, revision: str) -> None:
    engine = make_engine(url)
    upgrade(engine, revision)
    engine.dispose()


def test_a_schema_behind_the_code_stops_the_worker_and_names_the_fix(tmp_path, old_database_url):
    empty = run_cli(tmp_path, old_database_url, "worker", "--once")
    assert empty.exit_code == 1
    assert (
        empty.output == "Error: the database has no walletpass tables yet: run `walletpass init`\n"
    )

    migrate_to(old_database_url, "0002")
    behind = run_cli(tmp_path, old_database_url, "worker", "--once")
    assert behind.exit_code == 1
    assert behind.output == (
        f"Error: the database schema is at 0002 and this walletpass needs {head_revision()}: "
        "run `walletpass init` to migrate it\n"
    )
    assert run_cli(tmp_path, old_database_url, "init").exit_code == 0
    done = run_cli(tmp_path, old_database_url, "worker", "--once")
    assert (done.exit_code, done.output) == (0, "0 jobs handled\n")


def test_the_web_app_answers_503_until_the_schema_is_migrated_then_serves(
    tmp_path, old_database_url, certs_dir
):  # type: ignore[no-untyped-def]
    migrate_to(old_database_url, "0002")
    settings = Settings(
        home=tmp_path,
        database_url=old_database_url,
        secret_key="test-secret-key-not-for-production",
        certs_dir=certs_dir,
    )
    runtime = Runtime.create(settings)
    try:
        app = create_app(runtime=runtime, start_worker=False)
        readiness = app.extensions["walletpass_readiness"]
        readiness._recheck_s = 0  # re-check on every request, not every 5 s
        client = app.test_client()

        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.headers["Retry-After"] == "5"
        assert "run `walletpass init`" in health.json["detail"]
        # Not a 500 with a traceback on a missing column: every page says unavailable.
        assert client.get("/join/anything").status_code == 503
        api = client.get("/api/v1/programs", headers={"Authorization": "Bearer wp_x_y"})
        assert api.status_code == 503
        assert api.mimetype == "application/problem+json"

        migrate_to(old_database_url, "head")
        assert client.get("/healthz").json == {"status": "ok"}
        assert client.get("/join/anything").status_code == 404
    finally:
        runtime.close()


def test_serve_prints_its_address_once_listening_and_links_to_its_port(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETPASS_")} | {
        "WALLETPASS_HOME": str(tmp_path / "home")
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from walletpass.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "listening" not in line and time.monotonic() < deadline:
            line = server.stdout.readline()  # type: ignore[union-attr]
            assert line or server.poll() is None, "serve exited"
        assert line.strip() == (
            f"walletpass listening on http://127.0.0.1:{port} (public URL http://127.0.0.1:{port})"
        )
        # Printed after the bind: the very next request connects (the kernel queues it
        # until gunicorn's worker has imported the app).
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()  # type: ignore[union-attr]


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("walletpass, version ")


def test_a_worker_whose_database_fails_backs_off_and_logs_the_traceback_once(tmp_path, caplog):  # type: ignore[no-untyped-def]
    import logging
    import threading

    from walletpass.jobs.worker import Worker

    # No tables at all: every round fails the same way, as with a dropped database.
    runtime = Runtime.create(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/x.db"))
    stop = threading.Event()
    worker = Worker(runtime, name="failing")
    thread = threading.Thread(target=worker.run_forever, args=(stop, 0.05))
    with caplog.at_level(logging.INFO, logger="walletpass.jobs.worker"):
        thread.start()
        time.sleep(1.6)
        stop.set()
        thread.join(timeout=10)
    runtime.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Without backoff: a traceback every 50 ms, about 30 of them. With it: 0.1, 0.2, 0.4,
    # 0.8 s pauses, one traceback (the first of the loop; the periodic sweep logs its own).
    assert 3 <= len(errors) <= 6, [r.getMessage() for r in errors]
    assert sum(1 for r in errors if r.exc_info and "loop" in r.getMessage()) == 1
