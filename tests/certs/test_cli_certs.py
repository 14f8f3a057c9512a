"""`walletpass certs dev|import|show` and `walletpass pass build` through click's runner."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from walletpass.certs import p12 as p12_module
from walletpass.cli import main
from walletpass.resources import PASS_TEMPLATES_DIR

PASS_TYPE = "pass.test.cli"
TEAM = "TEAMCLI001"
SECRET = "cli-test-secret-key"
P12_PASSWORD = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]
TEMPLATES = PASS_TEMPLATES_DIR


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {
        "WALLETPASS_HOME": str(tmp_path / "home"),
        "WALLETPASS_PASS_TYPE_ID": PASS_TYPE,
        "WALLETPASS_TEAM_ID": TEAM,
        "WALLETPASS_SECRET_KEY": SECRET,
        "WALLETPASS_CERTS_DIR": "",
        "WALLETPASS_ORGANIZATION_NAME": "CLI Shop",
    }


def run(args, env, input=None):
    return CliRunner().invoke(main, args, env=env, input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def p12_files(tmp_path_factory):
    """A WWDR-like CA (PEM) and a matching pass .p12 protected by P12_PASSWORD."""
    tmp = tmp_path_factory.mktemp("p12")
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test WWDR"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.USER_ID, PASS_TYPE),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {PASS_TYPE}"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    wwdr = tmp / "wwdr.pem"
    wwdr.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    p12 = tmp / "pass.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"pass",
            key,
            cert,
            None,
            serialization.BestAvailableEncryption(P12_PASSWORD.encode()),
        )
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {"wwdr": wwdr, "p12": p12, "key_pem": key_pem}


@pytest.fixture(autouse=True)
def _no_bundled_certs(monkeypatch, tmp_path):
    monkeypatch.setattr(p12_module, "BUNDLED_CERTS_DIR", tmp_path / "none")


def _key_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if not line.startswith("-----")]


# --- certs dev -----------------------------------------------------------------------------


def test_certs_dev_writes_a_chain(tmp_path, env):
    out = tmp_path / "certs"
    result = run(["certs", "dev", "--out", str(out)], env)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"ca.pem", "pass.pem", "pass.key"}
    assert PASS_TYPE in result.output
    assert "PRIVATE KEY" not in result.output

    again = run(["certs", "dev", "--out", str(out)], env)
    assert again.exit_code == 1
    assert "already exist" in again.output

    forced = run(
        ["certs", "dev", "--out", str(out), "--force", "--pass-type-id", "pass.other",
         "--team-id", "OTHER"],
        env,
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    cert = x509.load_pem_x509_certificate((out / "pass.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "pass.other"


def test_certs_dev_defaults_to_the_instance_folder(tmp_path, env):
    result = run(["certs", "dev"], env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "certs" / "pass.pem").is_file()

    shown = run(["certs", "show"], env)
    assert shown.exit_code == 0, shown.output
    assert PASS_TYPE in shown.output
    assert TEAM in shown.output
    assert "warning" not in shown.output


# --- certs import --------------------------------------------------------------------------


def test_certs_import_wrong_password(tmp_path, env, p12_files):
    env = env | {"P12_PW": "Tr0ub4dor&3-guess"}
    result = run(
        ["certs", "import", "--p12", str(p12_files["p12"]), "--password-env", "P12_PW",
         "--wwdr", str(p12_files["wwdr"]), "--out", str(tmp_path / "out")],
        env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "wrong password for" in result.output
    assert env["P12_PW"] not in result.output


def test_certs_import_missing_password_variable(tmp_path, env, p12_files):
    result = run(
        ["certs", "import", "--p12", str(p12_files["p12"]), "--password-env", "NOT_SET_VAR"],
        env,
    )
    assert result.exit_code == 1
    assert "NOT_SET_VAR is not set" in result.output


def test_certs_import_needs_the_secret_key(tmp_path, env, p12_files):
    result = run(
        ["certs", "import", "--p12", str(p12_files["p12"]), "--wwdr", str(p12_files["wwdr"])],
        env | {"WALLETPASS_SECRET_KEY": ""},
        input=P12_PASSWORD + "\n",
    )
    assert result.exit_code == 1
    assert "WALLETPASS_SECRET_KEY is not set" in result.output


def test_certs_import_mismatched_pass_type(tmp_path, env, p12_files):
    result = run(
        ["certs", "import", "--p12", str(p12_files["p12"]), "--wwdr", str(p12_files["wwdr"]),
         "--out", str(tmp_path / "out")],
        env | {"WALLETPASS_PASS_TYPE_ID": "pass.configured"},
        input=P12_PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "'pass.test.cli'" in result.output
    assert "'pass.configured'" in result.output


def test_certs_import_missing_wwdr(tmp_path, env, p12_files):
    result = run(
        ["certs", "import", "--p12", str(p12_files["p12"]), "--out", str(tmp_path / "out")],
        env,
        input=P12_PASSWORD + "\n",
    )
    assert result.exit_code == 1
    assert "no WWDR intermediate matches" in result.output
    assert "G4" in result.output


def test_certs_import_prompts_and_never_prints_secrets(tmp_path, env, p12_files):
    out = tmp_path / "out"
    result = run(
        ["certs", "import", "--p12", str(p12_files["p12"]), "--wwdr", str(p12_files["wwdr"]),
         "--out", str(out)],
        env,
        input=P12_PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert P12_PASSWORD not in result.output
    assert SECRET not in result.output
    assert not any(line in result.output for line in _key_lines(p12_files["key_pem"]))
    assert {p.name for p in out.iterdir()} == {"pass.pem", "wwdr.pem", "pass.key.sealed"}
    shown = run(["certs", "show", "--certs", str(out)], env)
    assert shown.exit_code == 0, shown.output
    assert PASS_TYPE in shown.output


def test_certs_show_without_certificates(tmp_path, env):
    result = run(["certs", "show", "--certs", str(tmp_path / "empty")], env)
    assert result.exit_code == 1
    assert "walletpass certs dev" in result.output


# --- pass build ----------------------------------------------------------------------------


def _template_dirs() -> list[Path]:
    if not TEMPLATES.is_dir():
        return []
    return sorted(p for p in TEMPLATES.iterdir() if (p / "pass.json").is_file())


def _needs_templates():
    if not _template_dirs():
        pytest.skip("pass_templates/ has no templates yet (written by the templates helper)")
    try:
        import walletpass.passes.render
        import walletpass.passes.templates  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"template modules not there yet: {exc}")


def _verify_pkpass(pkpass: Path, ca: Path, tmp: Path) -> dict:
    with zipfile.ZipFile(io.BytesIO(pkpass.read_bytes())) as zf:
        (tmp / "manifest.json").write_bytes(zf.read("manifest.json"))
        (tmp / "signature").write_bytes(zf.read("signature"))
        pass_json = json.loads(zf.read("pass.json"))
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER",
         "-in", str(tmp / "signature"), "-content", str(tmp / "manifest.json"),
         "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return pass_json


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
@pytest.mark.parametrize("template", ["stamp_card", "points_tiers", "membership", "coupon"])
def test_pass_build_makes_a_verifiable_static_pass(tmp_path, env, template):
    _needs_templates()
    template_dir = TEMPLATES / template
    if not template_dir.is_dir():
        pytest.skip(f"{template_dir} is not there yet")
    certs = tmp_path / "certs"
    assert run(["certs", "dev", "--out", str(certs)], env).exit_code == 0
    out = tmp_path / "out.pkpass"
    result = run(
        ["pass", "build", str(template_dir), "--serial", "S-42", "--certs", str(certs),
         "-o", str(out)],
        env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    assert str(out.stat().st_size) in result.output
    pass_json = _verify_pkpass(out, certs / "ca.pem", tmp_path)
    assert pass_json["serialNumber"] == "S-42"
    assert pass_json["passTypeIdentifier"] == PASS_TYPE
    assert pass_json["teamIdentifier"] == TEAM
    assert "webServiceURL" not in pass_json
    assert "authenticationToken" not in pass_json


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_pass_build_with_sets(tmp_path, env):
    _needs_templates()
    certs = tmp_path / "certs"
    assert run(["certs", "dev", "--out", str(certs)], env).exit_code == 0
    out = tmp_path / "out.pkpass"
    result = run(
        ["pass", "build", str(TEMPLATES / "points_tiers"), "--serial", "S-7",
         "--set", "points=4321", "--set", "member_name=Ada",
         "--set", "web_service_url=https://example.test/apple",
         "--certs", str(certs), "-o", str(out)],
        env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pass_json = _verify_pkpass(out, certs / "ca.pem", tmp_path)
    text = json.dumps(pass_json)
    assert "4321" in text
    assert 4321 in _values(pass_json)  # an int stays an int
    assert "Ada" in text
    assert pass_json["webServiceURL"] == "https://example.test/apple"
    assert len(pass_json["authenticationToken"]) >= 16


def _values(doc) -> list:
    if isinstance(doc, dict):
        return [v for x in doc.values() for v in _values(x)]
    if isinstance(doc, list):
        return [v for x in doc for v in _values(x)]
    return [doc]


def test_pass_build_without_certificates_suggests_certs_dev(tmp_path, env):
    template = tmp_path / "tpl"
    template.mkdir()
    (template / "pass.json").write_text("{}")
    result = run(
        ["pass", "build", str(template), "--serial", "S", "--certs", str(tmp_path / "none"),
         "-o", str(tmp_path / "x.pkpass")],
        env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "walletpass certs dev" in result.output


def test_pass_build_with_a_missing_template(tmp_path, env):
    result = run(
        ["pass", "build", str(tmp_path / "nope"), "--serial", "S", "-o", str(tmp_path / "x")],
        env,
    )
    assert result.exit_code == 1
    assert "not a pass template" in result.output


def test_pass_build_rejects_a_malformed_set(tmp_path, env):
    template = tmp_path / "tpl"
    template.mkdir()
    (template / "pass.json").write_text("{}")
    result = run(
        ["pass", "build", str(template), "--serial", "S", "--set", "novalue",
         "-o", str(tmp_path / "x")],
        env,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "key=value" in result.output
