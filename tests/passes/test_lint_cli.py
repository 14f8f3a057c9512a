"""`walletpass pass lint FILE|DIR [--json] [--ca FILE]` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from lint_support import Bundle, make_chain

from walletpass.cli import main
from walletpass.resources import PASS_TEMPLATES_DIR

CHAIN = make_chain()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"WALLETPASS_HOME": str(tmp_path / "home"), "WALLETPASS_CERTS_DIR": ""}


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(CHAIN.ca.public_bytes(serialization.Encoding.PEM))
    return path


def _run(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["pass", "lint", *args], env=env, catch_exceptions=False)


def test_a_sound_pass_with_its_ca_trusted_has_no_findings(tmp_path, env, ca_file):  # type: ignore[no-untyped-def]
    card = tmp_path / "card.pkpass"
    card.write_bytes(Bundle(CHAIN).zip())
    result = _run([str(card), "--ca", str(ca_file)], env)
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output


def test_a_development_chain_is_only_a_warning(tmp_path, env):  # type: ignore[no-untyped-def]
    card = tmp_path / "card.pkpass"
    card.write_bytes(Bundle(CHAIN).zip())
    result = _run([str(card)], env)
    assert result.exit_code == 0, result.output
    assert "warning: chain-untrusted" in result.output


def test_an_error_exits_1_and_says_what_to_fix(tmp_path, env, ca_file):  # type: ignore[no-untyped-def]
    bundle = Bundle(CHAIN)
    bundle.pass_json["authenticationToken"] = "short"
    card = tmp_path / "card.pkpass"
    card.write_bytes(bundle.zip())
    result = _run([str(card), "--ca", str(ca_file)], env)
    assert result.exit_code == 1
    assert "error: token-too-short at /authenticationToken" in result.output
    assert "at least 16" in result.output


def test_json_output_lists_each_finding(tmp_path, env, ca_file):  # type: ignore[no-untyped-def]
    card = tmp_path / "card.pkpass"
    card.write_bytes(Bundle(CHAIN).zip(drop=("logo.png",)))
    result = _run([str(card), "--json", "--ca", str(ca_file)], env)
    assert result.exit_code == 1
    findings = json.loads(result.output)
    assert findings == [
        {
            "severity": "error",
            "code": "manifest-extra-entry",
            "path": "logo.png",
            "message": findings[0]["message"],
        }
    ]


def test_a_template_folder_is_linted(tmp_path, env):  # type: ignore[no-untyped-def]
    assert _run([str(PASS_TEMPLATES_DIR / "coupon")], env).exit_code == 0
    (tmp_path / "pass.json").write_text("{")
    result = _run([str(tmp_path)], env)
    assert result.exit_code == 1
    assert "template-invalid" in result.output


def test_a_ca_file_that_is_not_a_certificate_is_refused(tmp_path, env):  # type: ignore[no-untyped-def]
    card = tmp_path / "card.pkpass"
    card.write_bytes(Bundle(CHAIN).zip())
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    result = _run([str(card), "--ca", str(bad)], env)
    assert result.exit_code == 1
    assert "is not a PEM or DER X.509 certificate" in result.output
