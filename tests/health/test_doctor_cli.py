"""`walletpass doctor` as an operator runs it: what it prints, and its exit code."""

from __future__ import annotations

import json
from datetime import timedelta

import factories
import pytest
from healthkit import PASS_TYPE_ID, chain_settings, doctor, fresh_caches

from walletpass.db import utcnow

__all__ = ["chain_settings", "doctor", "fresh_caches"]  # fixtures, imported for the tests
pytestmark = pytest.mark.usefixtures("fresh_caches")


def test_a_certificate_expiring_in_10_days_is_a_warning_with_its_date(doctor, chain_settings):
    settings = chain_settings(days_left=10)
    result = doctor(settings, "--offline")

    assert result.exit_code == 0, result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("WARNING  Pass certificate")]
    end = (utcnow() + timedelta(days=10)).strftime("%Y-%m-%d")
    assert end in line
    assert "in 10 days" in line
    assert "0 errors" in result.output


def test_a_certificate_far_from_its_end_is_fine(doctor, chain_settings):
    result = doctor(chain_settings(days_left=200), "--offline", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [expiry] = [c for c in report["checks"] if c["check"] == "expiry.pass"]
    assert expiry["status"] == "ok"
    assert expiry["facts"]["days_left"] == "200"


def test_an_expired_certificate_is_an_error(doctor, chain_settings):
    result = doctor(chain_settings(days_left=-2), "--offline", "--json")

    assert result.exit_code == 1
    [expiry] = [c for c in json.loads(result.output)["checks"] if c["check"] == "expiry.pass"]
    assert expiry["status"] == "error"
    assert "Expired on" in expiry["message"]


def test_a_certificate_of_another_pass_type_than_configured_is_an_error(doctor, chain_settings):
    settings = chain_settings(cert_pass_type_id="pass.example.other")
    result = doctor(settings, "--offline")

    assert result.exit_code == 1, result.output
    [line] = [x for x in result.output.splitlines() if "Pass Type ID" in x and "ERROR" in x]
    assert "pass.example.other" in line
    assert f"WALLETPASS_PASS_TYPE_ID is {PASS_TYPE_ID}" in line


def test_issued_passes_of_another_pass_type_are_an_error(doctor, chain_settings, runtime):
    settings = chain_settings()
    with runtime.transaction() as s:
        m = factories.merchant(s)
        member = factories.member(s, factories.program(s, m, "points"))
        row = factories.member_pass(s, settings, member)
        row.pass_type_id = "pass.example.retired"

    result = doctor(settings, "--offline", "--json")

    assert result.exit_code == 1, result.output
    [check] = [c for c in json.loads(result.output)["checks"] if c["check"] == "pass_type"]
    assert check["status"] == "error"
    assert "pass.example.retired" in check["message"]
    assert check["facts"]["issued_pass_type_ids"] == "pass.example.retired"


def test_a_team_other_than_configured_is_an_error(doctor, chain_settings):
    result = doctor(chain_settings(cert_team_id="OTHERTEAM9"), "--offline", "--json")

    assert result.exit_code == 1
    [team] = [c for c in json.loads(result.output)["checks"] if c["check"] == "team"]
    assert team["status"] == "error"
    assert "OTHERTEAM9" in team["message"]


def test_no_certificate_is_an_error_naming_the_fix(doctor, settings, tmp_path):
    result = doctor(settings.override(certs_dir=tmp_path / "empty"), "--offline")

    assert result.exit_code == 1
    assert "walletpass certs dev" in result.output


def test_a_dev_chain_is_a_warning_on_https_and_fine_on_http(doctor, chain_settings):
    https = json.loads(doctor(chain_settings(), "--offline", "--json").output)
    http = json.loads(
        doctor(chain_settings(public_url="http://127.0.0.1:5000"), "--offline", "--json").output
    )

    assert [c["status"] for c in https["checks"] if c["check"] == "chain"] == ["warning"]
    assert [c["status"] for c in http["checks"] if c["check"] == "chain"] == ["ok"]
    assert https["status"] == "warning"


def test_a_merchants_own_certificate_is_checked_beside_the_installations(
    doctor, chain_settings, runtime
):
    from walletpass.certs.merchant import install_dev_chain

    settings = chain_settings()
    with runtime.transaction() as s:
        m = factories.merchant(s, slug="rosa")
        install_dev_chain(s, settings, m.id, "pass.example.rosa", "ROSATEAM01", "Rosa")
        member = factories.member(s, factories.program(s, m, "points"))
        row = factories.member_pass(s, settings, member)
        assert row.pass_type_id == "pass.example.rosa"  # signed with the merchant's own

    report = json.loads(doctor(settings, "--offline", "--json").output)

    types = {c["subject"]: c for c in report["checks"] if c["check"] == "pass_type"}
    # Rosa's passes are not the installation's mismatch: her certificate signs them.
    assert types[f"installation: {PASS_TYPE_ID}"]["status"] == "ok"
    assert types["rosa: pass.example.rosa"]["status"] == "ok"
    assert {c["subject"] for c in report["checks"] if c["check"] == "expiry.pass"} == {
        f"installation: {PASS_TYPE_ID}",
        "rosa: pass.example.rosa",
    }
