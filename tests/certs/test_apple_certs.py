"""Apple's public certificates ship in the package, are Apple's (fingerprints, G4 chains
to the root), and let an import work without --wwdr; ``certs show`` and ``init`` say
plainly when a chain is not Apple's."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from walletpass.certs.dev import create_dev_chain
from walletpass.certs.p12 import pick_wwdr
from walletpass.certs.trust import APPLE_ROOT_FILE, WWDR_G4_FILE, apple_root, judge_chain
from walletpass.cli import main
from walletpass.passes.signing import SigningIdentity
from walletpass.resources import APPLE_CERTS_DIR

# Apple's published SHA-256 fingerprints (Apple's certificate authority page).
FINGERPRINTS = {
    APPLE_ROOT_FILE: "B0:B1:73:0E:CB:C7:FF:45:05:14:2C:49:F1:29:5E:6E:"
    "DA:6B:CA:ED:7E:2C:68:C5:BE:91:B5:A1:10:01:F0:24",
    WWDR_G4_FILE: "EA:47:57:88:55:38:DD:8C:B5:9F:F4:55:6F:67:60:87:"
    "D8:3C:85:E7:09:02:C1:22:E4:2C:08:08:B5:BC:E1:4C",
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "certificates.md"
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def load(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((APPLE_CERTS_DIR / name).read_bytes())


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_shipped_certificates_are_apples_by_fingerprint(name):
    digest = load(name).fingerprint(hashes.SHA256()).hex(":").upper()
    assert digest == FINGERPRINTS[name]
    # The docs quote the same figure an operator can check with openssl.
    assert f"`{digest}`" in DOCS.read_text()


def test_the_package_ships_only_public_certificates():
    names = {p.name for p in APPLE_CERTS_DIR.iterdir()}
    assert names == {APPLE_ROOT_FILE, WWDR_G4_FILE, ".gitignore"}
    for name in (APPLE_ROOT_FILE, WWDR_G4_FILE):
        assert "PRIVATE KEY" not in (APPLE_CERTS_DIR / name).read_text()


@needs_openssl
def test_g4_chains_to_the_root_by_openssl():
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", APPLE_CERTS_DIR / APPLE_ROOT_FILE,
         APPLE_CERTS_DIR / WWDR_G4_FILE],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("AppleWWDRCAG4.pem: OK")


def test_the_import_searches_the_shipped_folder_and_checks_signatures():
    # The same search the import runs for a Pass Type ID certificate, on Apple's own pair:
    # given G4 and no other candidate, the shipped folder yields the root that signed it.
    g4 = load(WWDR_G4_FILE)
    now = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    assert pick_wwdr(g4, [], [APPLE_CERTS_DIR], now) == apple_root()


def test_a_chain_is_judged_apples_only_when_apples_root_signed_it(tmp_path):
    assert judge_chain(load(WWDR_G4_FILE)).apple
    dev = create_dev_chain(tmp_path, "pass.test.walletpass", "TESTTEAM01")
    verdict = judge_chain(x509.load_pem_x509_certificate(dev.ca_path.read_bytes()))
    assert not verdict.apple
    assert verdict.text.startswith("development")
    assert "real iPhones refuse them" in verdict.text


# --- the commands an operator runs ----------------------------------------------------------


def make_standin_p12(folder: Path) -> Path:
    """The README's rehearsal: a Pass Type ID certificate in Apple's subject layout, made
    with openssl, its issuing CA embedded in the .p12 as Apple's WWDR would be."""
    script = re.search(r"```sh\n(openssl req -x509.*?)```", DOCS.read_text(), re.S)
    assert script, "docs/certificates.md lost its stand-in recipe"
    subprocess.run(["bash", "-euc", script.group(1)], cwd=folder, check=True, capture_output=True)
    return folder / "PassTypeID.p12"


@needs_openssl
def test_a_p12_made_with_openssl_imports_without_wwdr_and_show_names_the_chain(tmp_path):
    p12 = make_standin_p12(tmp_path)
    env = {
        "WALLETPASS_HOME": str(tmp_path / "home"),
        "WALLETPASS_SECRET_KEY": "s" * 40,
        "WALLETPASS_PASS_TYPE_ID": "pass.com.example.loyalty",
        "WALLETPASS_TEAM_ID": "ABCDE12345",
        "P12_PASSWORD": "rehearsal",
    }
    cli = CliRunner()
    imported = cli.invoke(
        main, ["certs", "import", "--p12", str(p12), "--password-env", "P12_PASSWORD"], env=env
    )
    assert imported.exit_code == 0, imported.output
    assert "imported pass.com.example.loyalty (team ABCDE12345)" in imported.output
    certs = tmp_path / "home" / "certs"
    assert (certs / "wwdr.pem").read_bytes() == x509.load_pem_x509_certificate(
        (tmp_path / "ca.pem").read_bytes()
    ).public_bytes(serialization.Encoding.PEM)
    identity = SigningIdentity.from_dir(certs, env["WALLETPASS_SECRET_KEY"])
    assert identity.pass_type_id == "pass.com.example.loyalty"

    shown = cli.invoke(main, ["certs", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "chain:        development (a local CA" in shown.output


def test_init_with_an_https_public_url_makes_no_dev_chain_and_says_how_to_import(tmp_path):
    env = {
        "WALLETPASS_HOME": str(tmp_path / "home"),
        "WALLETPASS_PUBLIC_URL": "https://wallet.example.com",
    }
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "home" / "certs" / "pass.pem").exists()
    assert "warning: no signing certificate" in result.output
    assert "walletpass certs import --p12 PassTypeID.p12" in result.output

    local = CliRunner().invoke(main, ["init"], env={"WALLETPASS_HOME": str(tmp_path / "dev")})
    assert local.exit_code == 0, local.output
    assert (tmp_path / "dev" / "certs" / "pass.pem").is_file()
    assert "dev signing certificates written" in local.output
