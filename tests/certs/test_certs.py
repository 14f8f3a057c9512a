"""Development chain creation and .p12 import: every refusal carries a useful message."""

from __future__ import annotations

import datetime as dt
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from walletpass.certs import p12 as p12_module
from walletpass.certs.dev import create_dev_chain
from walletpass.certs.p12 import import_p12
from walletpass.passes.pkpass import build_pkpass
from walletpass.passes.signing import CertificateError, SigningIdentity

PASS_TYPE = "pass.test.walletpass"
TEAM = "TEAMTEST01"
SECRET = "test-secret-key-with-enough-entropy"
PASSWORD = b"p12-password"
NOW = dt.datetime.now(dt.UTC)

# Key generation dominates these tests; RSA keys are made once per module.
_KEYS: list[rsa.RSAPrivateKey] = []


def _key(i: int) -> rsa.RSAPrivateKey:
    while len(_KEYS) <= i:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[i]


def _wwdr_name(ou: str = "G4") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Worldwide Developer Relations CA"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Apple"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def make_ca(
    key: rsa.RSAPrivateKey, ou: str = "G4", not_after: dt.datetime | None = None
) -> x509.Certificate:
    name = _wwdr_name(ou)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=400))
        .not_valid_after(not_after or NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )


def make_pass_cert(
    ca_key: rsa.RSAPrivateKey,
    ca: x509.Certificate,
    key: rsa.RSAPrivateKey,
    *,
    uid: str | None = PASS_TYPE,
    team: str = TEAM,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.USER_ID, uid)] if uid else []
    attrs += [
        x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {uid}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Shop"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .sign(ca_key, hashes.SHA256())
    )


def write_p12(
    path: Path,
    cert: x509.Certificate | None,
    key=None,
    cas=None,
    password: bytes | None = PASSWORD,
) -> Path:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"pass", key, cert, cas, enc))
    return path


@pytest.fixture
def fake_apple(tmp_path, monkeypatch):
    """A WWDR-like CA, its certificate as a DER file, and a valid pass .p12."""
    # Keep the repo's certs/ folder out of the picture unless a test opts in.
    monkeypatch.setattr(p12_module, "BUNDLED_CERTS_DIR", tmp_path / "no-bundled-certs")
    ca = make_ca(_key(0))
    wwdr_der = tmp_path / "AppleWWDRCAG4.cer"
    wwdr_der.write_bytes(ca.public_bytes(serialization.Encoding.DER))
    cert = make_pass_cert(_key(0), ca, _key(1))
    p12 = write_p12(tmp_path / "pass.p12", cert, _key(1))
    return {"ca": ca, "wwdr": wwdr_der, "cert": cert, "p12": p12, "tmp": tmp_path}


def _import(fake, p12=None, password=PASSWORD, **kw):
    kw.setdefault("wwdr_candidates", [fake["wwdr"]])
    kw.setdefault("expected_pass_type_id", PASS_TYPE)
    kw.setdefault("expected_team_id", TEAM)
    return import_p12(p12 or fake["p12"], password, fake["tmp"] / "out", SECRET, **kw)


# --- development chain ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dev")
    create_dev_chain(out, PASS_TYPE, TEAM, organization="Test Shop")
    return out


def test_dev_chain_is_shaped_like_apples(dev_dir):
    ca = x509.load_pem_x509_certificate((dev_dir / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((dev_dir / "pass.pem").read_bytes())
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == PASS_TYPE
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"Pass Type ID: {PASS_TYPE}"
    )
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == TEAM
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test Shop"
    assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "US"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "G4"
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    validity = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=364) < validity < dt.timedelta(days=366)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_dev_key_is_private_rsa_2048(dev_dir):
    key_path = dev_dir / "pass.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_dev_chain_refuses_to_overwrite(tmp_path):
    create_dev_chain(tmp_path, PASS_TYPE, TEAM)
    before = (tmp_path / "pass.pem").read_bytes()
    with pytest.raises(CertificateError, match=r"already exist.*--force"):
        create_dev_chain(tmp_path, PASS_TYPE, TEAM)
    assert (tmp_path / "pass.pem").read_bytes() == before
    create_dev_chain(tmp_path, PASS_TYPE, TEAM, force=True)
    assert (tmp_path / "pass.pem").read_bytes() != before


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_dev_chain_verifies_with_openssl(dev_dir):
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(dev_dir / "ca.pem"), str(dev_dir / "pass.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- .p12 import: refusals -----------------------------------------------------------------


def test_wrong_password(fake_apple):
    with pytest.raises(CertificateError, match=r"wrong password for .*pass\.p12"):
        _import(fake_apple, password=b"not-it")


def test_not_a_p12(fake_apple):
    junk = fake_apple["tmp"] / "junk.p12"
    junk.write_bytes(b"this is not DER")
    with pytest.raises(CertificateError, match="not a PKCS#12"):
        _import(fake_apple, p12=junk)


def test_missing_file(fake_apple):
    with pytest.raises(CertificateError, match="cannot read"):
        _import(fake_apple, p12=fake_apple["tmp"] / "nope.p12")


def test_no_private_key(fake_apple):
    p12 = write_p12(fake_apple["tmp"] / "nokey.p12", fake_apple["cert"], key=None)
    with pytest.raises(CertificateError, match="no private key"):
        _import(fake_apple, p12=p12)


def test_expired_certificate_shows_not_after(fake_apple):
    ca = fake_apple["ca"]
    ended = dt.datetime(2023, 2, 7, 21, 48, 47, tzinfo=dt.UTC)
    cert = make_pass_cert(
        _key(0), ca, _key(1), not_before=ended - dt.timedelta(days=365), not_after=ended
    )
    p12 = write_p12(fake_apple["tmp"] / "expired.p12", cert, _key(1))
    with pytest.raises(CertificateError, match="expired on 2023-02-07 21:48:47 UTC"):
        _import(fake_apple, p12=p12)


def test_not_yet_valid_certificate(fake_apple):
    start = NOW + dt.timedelta(days=2)
    cert = make_pass_cert(
        _key(0), fake_apple["ca"], _key(1), not_before=start, not_after=start + dt.timedelta(1)
    )
    p12 = write_p12(fake_apple["tmp"] / "future.p12", cert, _key(1))
    with pytest.raises(CertificateError, match="not valid before"):
        _import(fake_apple, p12=p12)


def test_pass_type_id_mismatch_shows_both(fake_apple):
    with pytest.raises(
        CertificateError, match=r"'pass\.test\.walletpass'.*'pass\.com\.configured'"
    ):
        _import(fake_apple, expected_pass_type_id="pass.com.configured")


def test_team_id_mismatch_shows_both(fake_apple):
    with pytest.raises(CertificateError, match=r"team 'TEAMTEST01'.*'OTHERTEAM9'"):
        _import(fake_apple, expected_team_id="OTHERTEAM9")


def test_certificate_without_uid_is_not_a_pass_certificate(fake_apple):
    cert = make_pass_cert(_key(0), fake_apple["ca"], _key(1), uid=None)
    p12 = write_p12(fake_apple["tmp"] / "nouid.p12", cert, _key(1))
    with pytest.raises(CertificateError, match=r"not a Pass Type ID certificate.*no UID"):
        _import(fake_apple, p12=p12)


def test_no_matching_wwdr_names_the_generation(fake_apple):
    other = make_ca(_key(2), ou="G3")
    other_pem = fake_apple["tmp"] / "g3.pem"
    other_pem.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CertificateError, match=r"no WWDR intermediate matches.*OU=G4.*G4"):
        _import(fake_apple, wwdr_candidates=[other_pem])
    with pytest.raises(CertificateError, match="no WWDR intermediate"):
        _import(fake_apple, wwdr_candidates=[])


def test_look_alike_wwdr_with_another_key_is_not_picked(fake_apple):
    # Same subject, different key: only the signature check tells them apart.
    look_alike = make_ca(_key(2))
    path = fake_apple["tmp"] / "lookalike.pem"
    path.write_bytes(look_alike.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CertificateError, match="no WWDR intermediate"):
        _import(fake_apple, wwdr_candidates=[path])


def test_expired_wwdr_is_refused(fake_apple):
    old = make_ca(_key(0), not_after=NOW - dt.timedelta(days=1))
    path = fake_apple["tmp"] / "old.pem"
    path.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CertificateError, match="expired on"):
        _import(fake_apple, wwdr_candidates=[path])


def test_refuses_without_a_secret_key(fake_apple):
    with pytest.raises(CertificateError, match="WALLETPASS_SECRET_KEY is not set"):
        import_p12(fake_apple["p12"], PASSWORD, fake_apple["tmp"] / "out", "")
    assert not (fake_apple["tmp"] / "out").exists()


# --- .p12 import: success ------------------------------------------------------------------


@pytest.mark.broken_pass  # signs an empty pass.json: only the signing is under test
def test_import_writes_sealed_key_and_loads_back(fake_apple):
    out = fake_apple["tmp"] / "out"
    out.mkdir()
    # A dev chain's plaintext key in the folder belongs to the replaced certificate.
    (out / "pass.key").write_bytes(b"stale")
    imported = _import(fake_apple)
    assert imported.pass_type_id == PASS_TYPE
    assert imported.team_id == TEAM
    assert not (out / "pass.key").exists()
    for name in ("pass.pem", "wwdr.pem", "pass.key.sealed"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    sealed = (out / "pass.key.sealed").read_bytes()
    assert b"PRIVATE KEY" not in sealed
    with pytest.raises(ValueError, match="Unable to load PEM"):
        serialization.load_pem_private_key(sealed, None)
    with pytest.raises(ValueError, match="Could not deserialize key data"):
        serialization.load_der_private_key(sealed, None)

    identity = SigningIdentity.from_dir(out, SECRET)
    assert identity.pass_type_id == PASS_TYPE
    assert identity.intermediate == fake_apple["ca"]
    parts = build_pkpass(b"{}", {}, {}, identity)
    assert parts.signature
    with pytest.raises(CertificateError, match="wrong WALLETPASS_SECRET_KEY"):
        SigningIdentity.from_dir(out, SECRET + "-rotated")


def test_import_finds_wwdr_inside_the_p12(fake_apple):
    p12 = write_p12(
        fake_apple["tmp"] / "withchain.p12", fake_apple["cert"], _key(1), cas=[fake_apple["ca"]]
    )
    _import(fake_apple, p12=p12, wwdr_candidates=[])
    assert (fake_apple["tmp"] / "out" / "wwdr.pem").read_bytes() == fake_apple["ca"].public_bytes(
        serialization.Encoding.PEM
    )


def test_import_finds_wwdr_in_the_bundled_folder(fake_apple, monkeypatch):
    bundled = fake_apple["tmp"] / "bundled"
    bundled.mkdir()
    (bundled / "README.md").write_text("public certs only")
    other = make_ca(_key(2), ou="G3")
    (bundled / "AppleWWDRCAG3.pem").write_bytes(other.public_bytes(serialization.Encoding.PEM))
    shutil.copy(fake_apple["wwdr"], bundled / "AppleWWDRCAG4.cer")
    monkeypatch.setattr(p12_module, "BUNDLED_CERTS_DIR", bundled)
    _import(fake_apple, wwdr_candidates=[])
    assert (
        SigningIdentity.from_dir(fake_apple["tmp"] / "out", SECRET).intermediate
        == (fake_apple["ca"])
    )


def test_import_prefers_the_valid_edition_of_a_renewed_wwdr(fake_apple):
    # Apple renewed G1 with the same subject and key; the expired 2013 edition must lose.
    expired = make_ca(_key(0), not_after=NOW - dt.timedelta(days=30))
    both = fake_apple["tmp"] / "both.pem"
    both.write_bytes(
        expired.public_bytes(serialization.Encoding.PEM)
        + fake_apple["ca"].public_bytes(serialization.Encoding.PEM)
    )
    _import(fake_apple, wwdr_candidates=[both])
    wwdr = x509.load_pem_x509_certificate((fake_apple["tmp"] / "out" / "wwdr.pem").read_bytes())
    assert wwdr == fake_apple["ca"]


def test_import_of_an_unencrypted_p12(fake_apple):
    p12 = write_p12(fake_apple["tmp"] / "open.p12", fake_apple["cert"], _key(1), password=None)
    assert _import(fake_apple, p12=p12, password=None).pass_type_id == PASS_TYPE
