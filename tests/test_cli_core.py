"""The core CLI commands as an operator runs them: demo, keys, users, jobs, logs."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from walletpass.cli import main
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.queue import enqueue
from walletpass.loyalty.ledger import ledger_balance
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.tenancy.apikeys import authenticate
from walletpass.tenancy.models import User


@pytest.fixture
def cli(settings, runtime):  # type: ignore[no-untyped-def]
    # runtime: empties the tables after the test, whatever the commands wrote.
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), obj=settings, env=env, catch_exceptions=False)

    return run


def test_demo_json_prints_working_keys_and_urls(cli, runtime):
    result = cli("demo", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output.strip().splitlines()[-1])
    assert {p["program"] for p in info["passes"]} == {"demo-stamps", "demo-points", "demo-offers"}
    assert len({p["serial"] for p in info["passes"]}) == len(info["passes"])
    with runtime.transaction() as s:
        assert authenticate(s, info["api_key"]).scope == "admin"
        assert authenticate(s, info["till_api_key"]).scope == "till"
    # Running it again reuses the merchant and mints new credentials.
    again = json.loads(cli("demo", "--json").output.strip().splitlines()[-1])
    assert [p["serial"] for p in again["passes"]] == [p["serial"] for p in info["passes"]]
    assert again["api_key"] != info["api_key"]


def test_the_demo_members_balances_are_their_ledgers(cli, runtime):
    # The demo's cards are made the way the till makes them: each visit and purchase is a
    # ledger entry, so the balances are the ledger's sums (a refund or an expiry later
    # works on them as on any member's).
    assert cli("demo", "--json").exit_code == 0
    with runtime.transaction() as s:
        members = s.scalars(select(Member).order_by(Member.id)).all()
        shown = {
            m.name: (m.points_balance, m.stamps_balance, m.lifetime_spend, m.tier) for m in members
        }
        sums = {m.name: ledger_balance(s, m.id) for m in members}
        entries = {
            m.name: s.scalar(select(func.count()).where(LedgerEntry.member_id == m.id))
            for m in members
        }
    assert shown == {
        "Ada Lovelace": (0, 7, Decimal("0.00"), None),
        "Grace Hopper": (5400, 0, Decimal("5400.00"), "Silver"),
    }
    assert sums == {name: (points, stamps) for name, (points, stamps, _, _) in shown.items()}
    assert entries == {"Ada Lovelace": 7, "Grace Hopper": 12}


def test_apikeys_and_users_reject_bad_input_clearly(cli, runtime):
    cli("demo", "--json")
    r = cli("apikeys", "create", "--merchant", "nope", "--scope", "read")
    assert r.exit_code == 1
    assert "no merchant 'nope'" in r.output
    r = cli("apikeys", "create", "--merchant", "demo-cafe", "--scope", "till", "--store", "main")
    assert r.exit_code == 0
    assert r.output.startswith("wp_")
    r = cli("apikeys", "create", "--merchant", "demo-cafe", "--scope", "till", "--store", "nope")
    assert r.exit_code == 1
    assert "has no store 'nope'" in r.output

    def create_staff(password: str):  # type: ignore[no-untyped-def]
        return cli(
            "users",
            "create",
            "--merchant",
            "demo-cafe",
            "--email",
            "s@x.test",
            "--role",
            "staff",
            "--password-env",
            "PW",
            env={"PW": password},
        )

    r = create_staff("short")
    assert r.exit_code == 1
    assert "password too short" in r.output
    r = create_staff("long-enough-password")
    assert r.exit_code == 0
    with runtime.transaction() as s:
        user = s.scalars(select(User).where(User.email == "s@x.test")).one()
        assert user.password_hash.startswith("$argon2")


def test_jobs_lists_dead_jobs_and_retries_them(cli, runtime):
    with runtime.transaction() as s:
        enqueue(s, "apple.push", {"token": "x"}, merchant_id=None)
        job = s.scalars(select(Job)).one()
        job.status = JobStatus.DEAD
        job.last_error = "PermanentFailure: APNs 400 BadTopic"
    r = cli("jobs")
    assert "dead" in r.output
    assert "BadTopic" in r.output
    r = cli("jobs", "--retry-dead")
    assert "1 job(s) queued again" in r.output
    with runtime.transaction() as s:
        assert s.scalars(select(Job.status)).one() == JobStatus.PENDING


def test_a_second_user_with_the_same_email_is_refused_clearly(cli):
    cli("demo", "--json")
    args = (
        "users",
        "create",
        "--merchant",
        "demo-cafe",
        "--email",
        "Dup@x.test",
        "--role",
        "staff",
        "--password-env",
        "PW",
    )
    assert cli(*args, env={"PW": "long-enough-password"}).exit_code == 0
    r = cli(*args[:5], "dup@X.test", *args[6:], env={"PW": "long-enough-password"})
    assert r.exit_code == 1
    assert "already exists" in r.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "WALLETPASS_WEBHOOK_ALLOWED_NETWORKS",
            "10.0.0.0/8, 10.0.0/33",
            "WALLETPASS_WEBHOOK_ALLOWED_NETWORKS: '10.0.0/33' is not a network",
        ),
        ("WALLETPASS_JOB_LEASE_SECONDS", "sixty", "WALLETPASS_JOB_LEASE_SECONDS: 'sixty' is not"),
        ("WALLETPASS_API_KEY_CACHE_SECONDS", "-1", "WALLETPASS_API_KEY_CACHE_SECONDS: must be 0"),
        ("WALLETPASS_LOG_LEVEL", "LOUD", "WALLETPASS_LOG_LEVEL: 'LOUD' is not a level; use one"),
        (
            "WALLETPASS_EMBEDDED_WORKER",
            "maybe",
            "WALLETPASS_EMBEDDED_WORKER: 'maybe' is not a yes/no",
        ),
        (
            "WALLETPASS_PUBLIC_URL",
            "wallet.example.com",
            "WALLETPASS_PUBLIC_URL: 'wallet.example.com' is not an http(s) address",
        ),
        (
            "WALLETPASS_DATABASE_URL",
            "postgres://shop:pw@db/wallet",
            "WALLETPASS_DATABASE_URL: postgres:// names no driver walletpass installs; write "
            "postgresql+psycopg:// (postgresql+psycopg://shop:***@db/wallet)",
        ),
        (
            "WALLETPASS_DATABASE_URL",
            "postgresql://shop@db/wallet",
            "WALLETPASS_DATABASE_URL: postgresql:// names no driver walletpass installs",
        ),
        ("WALLETPASS_DATABASE_URL", "mysql://db/wallet", "WALLETPASS_DATABASE_URL: 'mysql' is not"),
        (
            "WALLETPASS_DATABASE_URL",
            "wallet.sqlite3",
            "WALLETPASS_DATABASE_URL: not a database URL",
        ),
    ],
)
def test_a_bad_setting_stops_the_command_at_start_naming_the_variable(
    variable, value, message, tmp_path
):  # type: ignore[no-untyped-def]
    # No settings given: the command reads the environment, as `walletpass serve` does.
    env = {"WALLETPASS_HOME": str(tmp_path), variable: value}
    result = CliRunner().invoke(main, ["jobs"], env=env)
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output
    assert "pw" not in result.output.replace("postgres", "")  # the password stays hidden
    assert not (tmp_path / "walletpass.sqlite3").exists()  # stopped before touching anything
