"""Importing a merchant's own .p12 from the CLI: each refusal names its reason and changes
nothing; show and remove; a development chain of the merchant's own (issue 22)."""

from __future__ import annotations

import datetime as dt

import factories
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, pkcs12
from merchant_helpers import Shop, cms_verifies, make_shop, new_card
from sqlalchemy import select
from test_certs import PASSWORD, _key, make_ca, make_pass_cert, write_p12

from walletpass.certs import merchant as merchant_certs
from walletpass.certs.models import MerchantCertificate
from walletpass.cli import main

TYPE = "pass.com.echo.loyalty"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def cli(settings, runtime):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), obj=settings, env=env)

    return run


@pytest.fixture
def echo(runtime, settings, tmp_path):  # type: ignore[no-untyped-def]
    """A merchant whose current certificate is a dev chain: a refused import must leave
    it as it is."""
    return make_shop(runtime, settings, tmp_path, "echo", "pass.com.echo.current")


@pytest.fixture
def apple(tmp_path):  # type: ignore[no-untyped-def]
    ca = make_ca(_key(0))
    wwdr = tmp_path / "wwdr.pem"
    wwdr.write_bytes(ca.public_bytes(Encoding.PEM))
    return {"ca": ca, "wwdr": wwdr, "tmp": tmp_path}


def _rows(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return [
            (r.pass_type_id, r.active, r.fingerprint)
            for r in s.scalars(select(MerchantCertificate).order_by(MerchantCertificate.id))
        ]


def _import(cli, p12, wwdr, password=None):  # type: ignore[no-untyped-def]
    password = password or PASSWORD.decode()
    return cli(
        "certs", "import", "--merchant", "echo", "--p12", str(p12), "--wwdr", str(wwdr),
        "--password-env", "P12_PW", env={"P12_PW": password},
    )  # fmt: skip


def test_a_good_p12_becomes_the_merchants_certificate(
    cli, runtime, settings, echo, apple, tmp_path, client
):
    p12 = write_p12(
        tmp_path / "good.p12", make_pass_cert(_key(0), apple["ca"], _key(1), uid=TYPE), _key(1)
    )
    r = _import(cli, p12, apple["wwdr"])
    assert r.exit_code == 0, r.output
    assert TYPE in r.output
    assert "PRIVATE KEY" not in r.output
    assert [(t, a) for t, a, _ in _rows(runtime)] == [
        ("pass.com.echo.current", False),
        (TYPE, True),
    ]
    shown = cli("certs", "show", "--merchant", "echo")
    assert shown.exit_code == 0, shown.output
    assert TYPE in shown.output
    assert "TEAMTEST01" in shown.output
    _, serial, pass_type, _ = new_card(runtime, settings, echo)
    assert pass_type == TYPE
    got = client.get(f"/p/{serial}.pkpass")
    assert got.status_code == 200
    assert cms_verifies(got.data, apple["wwdr"], tmp_path / "v")


def _expired(apple):  # type: ignore[no-untyped-def]
    return make_pass_cert(
        _key(0), apple["ca"], _key(1), uid=TYPE,
        not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=1),
    ), _key(1)  # fmt: skip


def _no_uid(apple):  # type: ignore[no-untyped-def]
    return make_pass_cert(_key(0), apple["ca"], _key(1), uid=None), _key(1)


def _other_generation(apple):  # type: ignore[no-untyped-def]
    g1 = make_ca(_key(2), ou="Apple Worldwide Developer Relations")
    return make_pass_cert(_key(2), g1, _key(1), uid=TYPE), _key(1)


@pytest.mark.parametrize(
    ("make", "password", "reason"),
    [
        (
            lambda a: (make_pass_cert(_key(0), a["ca"], _key(1), uid=TYPE), _key(1)),
            "wrong",
            "wrong password",
        ),
        (_expired, None, "expired on"),
        (_no_uid, None, "not a Pass Type ID certificate"),
        (_other_generation, None, "no WWDR intermediate matches"),
        ("mismatch", None, "does not match its certificate"),
    ],
    ids=["wrong-password", "expired", "not-pass-type-id", "wrong-wwdr-generation", "key-mismatch"],
)
def test_each_refusal_names_its_reason_and_changes_nothing(
    cli, runtime, settings, echo, apple, tmp_path, make, password, reason
):
    before = _rows(runtime)
    p12 = tmp_path / "refused.p12"
    if make == "mismatch":
        # The key of another certificate: OpenSSL pairs it with none of the .p12's.
        cert = make_pass_cert(_key(0), apple["ca"], _key(1), uid=TYPE)
        p12.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"pass", _key(3), None, [cert],
                BestAvailableEncryption(PASSWORD),
            )
        )  # fmt: skip
    else:
        cert, key = make(apple)
        write_p12(p12, cert, key)
    r = _import(cli, p12, apple["wwdr"], password or PASSWORD.decode())
    assert r.exit_code == 1
    assert reason in r.output
    assert "PRIVATE KEY" not in r.output
    assert _rows(runtime) == before
    _, _, pass_type, _ = new_card(runtime, settings, echo)
    assert pass_type == "pass.com.echo.current"


def test_remove_goes_back_to_the_installations_certificate(cli, runtime, settings, echo):
    r = cli("certs", "remove", "--merchant", "echo")
    assert r.exit_code == 0, r.output
    assert [a for _, a, _ in _rows(runtime)] == [False]
    _, _, pass_type, _ = new_card(runtime, settings, echo)
    assert pass_type == settings.pass_type_id
    again = cli("certs", "remove", "--merchant", "echo")
    assert again.exit_code == 1
    assert "no certificate of its own" in again.output
    shown = cli("certs", "show", "--merchant", "echo")
    assert "has no certificate of its own" in shown.output
    assert settings.pass_type_id in shown.output


def test_a_merchant_dev_chain_from_the_cli(cli, runtime, settings, client, tmp_path):
    with runtime.transaction() as s:
        m = factories.merchant(s, slug="foxtrot")
        program_id = factories.program(s, m, "points").id
    out = tmp_path / "foxtrot"
    r = cli("certs", "dev", "--merchant", "foxtrot", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert f"{settings.pass_type_id}.foxtrot" in r.output
    with runtime.transaction() as s:
        row = merchant_certs.active_certificate(s, m.id)
        assert row is not None
        assert row.pass_type_id == f"{settings.pass_type_id}.foxtrot"
    shop = Shop(m.id, "foxtrot", program_id, row.pass_type_id, out / "ca.pem")
    _, serial, _, _ = new_card(runtime, settings, shop)
    assert cms_verifies(client.get(f"/p/{serial}.pkpass").data, out / "ca.pem", tmp_path / "v")
    unknown = cli("certs", "dev", "--merchant", "nobody")
    assert unknown.exit_code == 1
    assert "no merchant 'nobody'" in unknown.output
