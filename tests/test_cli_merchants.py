"""`walletpass merchants create|list`, and the README's production steps after it: a
merchant, its owner, a till key and an imported certificate lead to a purchase scan."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from walletpass.app import create_app
from walletpass.cli import main
from walletpass.runtime import Runtime
from walletpass.tenancy.apikeys import authenticate
from walletpass.tenancy.models import Merchant, User


@pytest.fixture
def cli(settings, runtime):  # type: ignore[no-untyped-def]
    # runtime: empties the tables after the test, whatever the commands wrote.
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), obj=settings, env=env)

    return run


CAFE = ("--slug", "cafe-lima", "--name", "Café Lima", "--timezone", "Europe/Athens")


def test_create_then_list(cli, runtime):
    empty = cli("merchants", "list")
    assert empty.output == "no merchants; create one with `walletpass merchants create`\n"

    made = cli("merchants", "create", *CAFE, "--currency", "eur", "--language", "zh-Hant")
    assert made.exit_code == 0, made.output
    assert made.output.splitlines()[0] == (
        "merchant cafe-lima created (Café Lima, Europe/Athens, EUR, zh-Hant)"
    )
    with runtime.transaction() as session:
        merchant = session.scalars(select(Merchant)).one()
        assert (merchant.currency, merchant.timezone, merchant.language) == (
            "EUR",
            "Europe/Athens",
            "zh-Hant",
        )

    listed = cli("merchants", "list", "--json")
    row = json.loads(listed.output)
    assert row | {"created_at": None} == {
        "slug": "cafe-lima",
        "name": "Café Lima",
        "timezone": "Europe/Athens",
        "currency": "EUR",
        "language": "zh-Hant",
        "members": 0,
        "passes": 0,
        "created_at": None,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--slug", "Café", "--name", "x"), "slug: 2-64 lowercase letters"),
        (("--slug", "ok-slug", "--name", " "), "name: 1-200 characters"),
        (("--slug", "ok-slug", "--name", "x", "--timezone", "Mars/Base"), "timezone: 'Mars/Base'"),
        (("--slug", "ok-slug", "--name", "x", "--currency", "EURO"), "currency: 'EURO' is not"),
        (("--slug", "ok-slug", "--name", "x", "--language", "fr"), "language: 'fr' is not one of"),
    ],
)
def test_bad_values_are_named_and_nothing_is_written(cli, runtime, args, message):
    defaults = {"--timezone": "UTC", "--currency": "EUR"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    full = [x for k, v in (defaults | given).items() for x in (k, v)]
    result = cli("merchants", "create", *full)
    assert result.exit_code == 1
    assert message in result.output
    with runtime.transaction() as session:
        assert session.scalar(select(func.count(Merchant.id))) == 0


def test_a_taken_slug_is_refused(cli, runtime):
    assert cli("merchants", "create", *CAFE, "--currency", "EUR").exit_code == 0
    again = cli("merchants", "create", *CAFE, "--currency", "TWD")
    assert (again.exit_code, again.output) == (1, "Error: a merchant 'cafe-lima' already exists\n")
    with runtime.transaction() as session:
        assert session.scalars(select(Merchant.currency)).all() == ["EUR"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_production_steps_lead_to_a_purchase_scan(cli, settings, tmp_path):
    """merchants create, users create, apikeys create, certs import (a p12 made with
    openssl), then the API: a program, a member, and a purchase at the till."""
    from certs.test_apple_certs import make_standin_p12

    settings = settings.override(
        certs_dir=tmp_path / "certs",
        pass_type_id="pass.com.example.loyalty",
        team_id="ABCDE12345",
    )
    run = CliRunner().invoke
    env = {"OWNER_PASSWORD": "a-long-owner-password", "P12_PASSWORD": "rehearsal"}
    steps = [
        ("merchants", "create", *CAFE, "--currency", "EUR"),
        ("users", "create", "--merchant", "cafe-lima", "--email", "owner@cafe-lima.test",
         "--role", "owner", "--password-env", "OWNER_PASSWORD"),
        ("certs", "import", "--p12", str(make_standin_p12(tmp_path)),
         "--password-env", "P12_PASSWORD"),
        ("apikeys", "create", "--merchant", "cafe-lima", "--scope", "admin"),
        ("apikeys", "create", "--merchant", "cafe-lima", "--scope", "till"),
    ]  # fmt: skip
    outputs = []
    for step in steps:
        result = run(main, list(step), obj=settings, env=env)
        assert result.exit_code == 0, (step, result.output)
        outputs.append(result.output.strip())
    admin_key, till_key = outputs[-2:]

    runtime = Runtime.create(settings)
    try:
        with runtime.transaction() as session:
            assert authenticate(session, till_key).scope == "till"
            assert session.scalars(select(User.role)).all() == ["owner"]
        client = create_app(runtime=runtime, start_worker=False).test_client()
        admin = {"Authorization": f"Bearer {admin_key}"}
        program = client.post(
            "/api/v1/programs",
            json={"slug": "coffee-points", "name": "Coffee Points", "kind": "points",
                  "rules": {"amount_per_point": "1.00"}},
            headers=admin,
        )  # fmt: skip
        assert program.status_code == 201, program.json
        member = client.post(
            "/api/v1/members",
            json={"program": "coffee-points", "email": "ada@example.com"},
            headers=admin,
        )
        assert member.status_code == 201, member.json
        pkpass = client.get(urlsplit(member.json["passes"][0]["apple_pkpass_url"]).path)
        assert pkpass.status_code == 200
        assert pkpass.mimetype == "application/vnd.apple.pkpass"
        # What the till's scanner reads from the phone: the pass's barcode.
        with zipfile.ZipFile(io.BytesIO(pkpass.data)) as bundle:
            code = json.loads(bundle.read("pass.json"))["barcodes"][0]["message"]
        scan = client.post(
            "/api/v1/scans",
            json={"code": code, "action": "purchase", "amount": "12.50", "receipt_id": "R-1"},
            headers={"Authorization": f"Bearer {till_key}"},
        )
        assert scan.status_code == 200, scan.json
        assert scan.json["member"]["points"] == 12
    finally:
        runtime.close()
