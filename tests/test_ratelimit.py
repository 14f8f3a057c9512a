"""Rate limits as a client meets them: sign-in attempts per address across accounts, the
Google save link, one count across workers when the store is Redis, and a store that
cannot be used stopping the start in one line."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import factories
import pytest
import redis
from click.testing import CliRunner
from limits import parse
from sqlalchemy import select

from walletpass.app import create_app
from walletpass.cli import main
from walletpass.config import Settings
from walletpass.tenancy.models import User
from walletpass.tenancy.users import hash_password
from walletpass.web import ratelimit

PASSWORD = "correct horse battery"
# A database of Redis's own for these tests; each test's counts are under a client
# address of its own, deleted after it.
REDIS_URL = "redis://127.0.0.1:6379/3"


def _csrf(client) -> str:  # type: ignore[no-untyped-def]
    with client.session_transaction() as session:
        session.setdefault("csrf", "test-csrf-token-0123456789")
        return str(session["csrf"])


def test_sign_in_attempts_from_one_address_are_refused_after_the_limit_across_accounts(
    client, runtime
):  # type: ignore[no-untyped-def]
    # Password spraying: one wrong password tried on 40 accounts, one attempt each, so no
    # account's own lock-out (5 failures) ever starts.
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        password_hash = hash_password(PASSWORD)
        emails = [f"owner{i}@example.test" for i in range(40)]
        for email in emails:
            s.add(
                User(
                    merchant_id=merchant.id, email=email, password_hash=password_hash, role="owner"
                )
            )
    answers = [
        client.post(
            "/admin/login",
            data={"email": email, "password": "guess-123", "csrf_token": _csrf(client)},
        )
        for email in emails
    ]
    assert [r.status_code for r in answers] == [200] * 10 + [429] * 30
    assert "Wrong email or password" in answers[9].get_data(as_text=True)
    refused = answers[10]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many sign-in attempts from this network" in refused.get_data(as_text=True)
    with runtime.transaction() as s:
        failures = dict(s.execute(select(User.email, User.failed_logins)).all())
    # A refused attempt never reached the password check.
    assert [failures[e] for e in emails] == [1] * 10 + [0] * 30
    # Even the right password waits, from that address; another address signs in.
    right = {"email": emails[20], "password": PASSWORD, "csrf_token": _csrf(client)}
    assert client.post("/admin/login", data=right).status_code == 429
    other = client.post("/admin/login", data=right, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 302


@pytest.fixture
def google_on(runtime, monkeypatch):  # type: ignore[no-untyped-def]
    settings = runtime.settings.override(
        google_issuer_id="3388000000012345678", google_service_account_file="/dev/null"
    )
    monkeypatch.setattr(runtime, "settings", settings)


@pytest.mark.usefixtures("google_on")
def test_google_save_links_are_limited_per_address(client):  # type: ignore[no-untyped-def]
    # Counted before the pass is looked up, so probing serials is limited too.
    statuses = [client.get("/p/nope/google").status_code for _ in range(31)]
    assert statuses == [404] * 30 + [429]
    r = client.get("/p/nope/google")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "try again in" in r.get_data(as_text=True)
    assert client.get("/p/nope/google", environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 404


def test_apple_web_service_is_not_limited(client):  # type: ignore[no-untyped-def]
    # Wallet retries what is refused; 100 polls from one address all get their answer.
    path = "/apple/v1/devices/d1/registrations/pass.test.walletpass"
    assert {client.get(path).status_code for _ in range(100)} == {204}


@pytest.fixture
def redis_address() -> Iterator[str]:
    """A client address no other run uses; its counts are deleted from Redis after."""
    store = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        store.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc})")
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    yield address
    keys = list(store.scan_iter(match=f"*{address}*"))
    if keys:
        store.delete(*keys)
    store.close()


def _two_workers(runtime, settings, store: str):  # type: ignore[no-untyped-def]
    """Two app instances counting in ``store``, as two gunicorn workers do."""
    with runtime.transaction() as s:
        factories.program(s, factories.merchant(s), "stamps", slug="beans")
    config = settings.override(ratelimit_storage_url=store)
    return [create_app(config, runtime=runtime).test_client() for _ in range(2)]


def _join_posts(workers, address: str, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    # An empty form, by turns to each worker: invalid (422) until the address is limited.
    return [
        workers[i % 2]
        .post("/join/beans", data={"name": ""}, environ_base={"REMOTE_ADDR": address})
        .status_code
        for i in range(count)
    ]


def test_two_workers_share_one_count_in_redis(runtime, settings, redis_address):  # type: ignore[no-untyped-def]
    workers = _two_workers(runtime, settings, REDIS_URL)
    assert _join_posts(workers, redis_address, 12) == [422] * 10 + [429] * 2


def test_in_memory_each_worker_counts_alone(runtime, settings):  # type: ignore[no-untyped-def]
    workers = _two_workers(runtime, settings, "memory://")
    assert _join_posts(workers, "10.0.0.5", 12) == [422] * 12  # 6 of each one's 10


def test_while_redis_does_not_answer_each_worker_counts_in_memory(runtime, settings, caplog):  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    worker = _two_workers(runtime, settings, f"redis://127.0.0.1:{closed}/0")[0]
    # The pages keep answering, and the limit still holds, per process.
    assert _join_posts([worker, worker], "10.0.0.6", 11) == [422] * 10 + [429]
    assert "the store does not answer" in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("memcached://cache:11211", "'memcached://cache:11211'"),
        ("redis://:s3cret@", "'redis://:***@'"),  # no host; the password stays hidden
        ("cache.internal:6379", "'cache.internal:6379'"),
    ],
)
def test_an_unusable_rate_limit_store_stops_the_start_in_one_line(tmp_path, url, shown):  # type: ignore[no-untyped-def]
    env = {"WALLETPASS_HOME": str(tmp_path), "WALLETPASS_RATELIMIT_STORAGE_URL": url}
    result = CliRunner().invoke(main, ["jobs"], env=env)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: WALLETPASS_RATELIMIT_STORAGE_URL: {shown} is not a store walletpass can use; "
        "write memory:// (each process counts alone) or redis://host:6379/0\n"
    )
    assert not (tmp_path / "walletpass.sqlite3").exists()


@pytest.mark.parametrize(
    "url",
    ["memory://", "redis://cache:6379/0", "rediss://:pw@cache:6380/1", "redis+unix:///run/r.sock"],
)
def test_the_rate_limit_stores_walletpass_can_use_are_accepted(url):  # type: ignore[no-untyped-def]
    assert Settings(ratelimit_storage_url=url).ratelimit_storage_url == url


def test_a_process_window_slides_and_forgets_idle_clients(monkeypatch):  # type: ignore[no-untyped-def]
    # The in-process count is a sliding window: the 4th request within a minute waits for
    # the first to leave it (not for the next whole minute), and a client that stopped
    # calling is forgotten, so the memory held follows the clients active lately.
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    windows = ratelimit.ProcessWindows()
    three = parse("3/minute")
    key = ("walletpass", "join", "10.0.0.1")
    answers = []
    for at in (0, 10, 20, 30):
        clock[0] = 1000.0 + at
        answers.append(windows.refused_for(three, key))
    assert answers == [None, None, None, 30]  # the first counted leaves at 60
    clock[0] = 1060.5
    assert windows.refused_for(three, key) is None
    assert windows.refused_for(three, key) == 10  # the one at 10 leaves at 70
    # Another client, much later: the sweep drops the first one, idle for a window.
    clock[0] = 1000.0 + 60 * 5
    assert windows.refused_for(three, ("walletpass", "join", "10.0.0.2")) is None
    assert list(windows._hits) == [("walletpass", "join", "10.0.0.2")]
