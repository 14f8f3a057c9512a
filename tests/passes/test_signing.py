"""pkpass building and PKCS#7 signing, checked with the openssl CLI as Wallet's stand-in."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from walletpass.certs.dev import create_dev_chain
from walletpass.passes.pkpass import (
    assemble_pkpass,
    build_pkpass,
    check_pass_json_matches,
    manifest_bytes,
    sha1_hex,
)
from walletpass.passes.signing import (
    CertificateError,
    SigningIdentity,
    clear_identity_cache,
    load_identity,
)
from walletpass.resources import PASS_TEMPLATES_DIR
from walletpass.security import seal

PASS_TYPE = "pass.test.walletpass"
TEAM = "TEAMTEST01"
REPO = Path(__file__).resolve().parents[2]
TEMPLATES = PASS_TEMPLATES_DIR

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

# A PNG signature and a 29x29 header (all the pass linter reads), then filler bytes.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (29).to_bytes(4, "big") * 2 + bytes(range(256)) * 8


@pytest.fixture(scope="module")
def certs_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    create_dev_chain(out, PASS_TYPE, TEAM)
    return out


@pytest.fixture(scope="module")
def identity(certs_dir) -> SigningIdentity:
    return SigningIdentity.from_dir(certs_dir, None)


def _files() -> dict[str, bytes]:
    return {
        "icon.png": PNG,
        "icon@2x.png": PNG + b"2",
        "logo.png": PNG + b"logo",
        "de.lproj/pass.strings": b'"Points" = "Punkte";\n',
    }


def _pass_json(serial: str = "S-1", points: int = 120) -> bytes:
    doc = {
        "formatVersion": 1,
        "passTypeIdentifier": PASS_TYPE,
        "teamIdentifier": TEAM,
        "serialNumber": serial,
        "organizationName": "Test",
        "description": "Test card",
        "storeCard": {"primaryFields": [{"key": "pts", "label": "Points", "value": points}]},
    }
    # indent=2 puts newlines in pass.json: its hash must be of these exact bytes.
    return json.dumps(doc, indent=2).encode()


def _build(identity, pass_json=None, files=None):
    files = _files() if files is None else files
    return build_pkpass(
        pass_json or _pass_json(), files, {n: sha1_hex(b) for n, b in files.items()}, identity
    )


def openssl_verify(tmp: Path, manifest: bytes, signature: bytes, ca: Path):
    (tmp / "manifest.json").write_bytes(manifest)
    (tmp / "signature").write_bytes(signature)
    return subprocess.run(
        [
            "openssl", "cms", "-verify", "-binary", "-inform", "DER",
            "-in", str(tmp / "signature"), "-content", str(tmp / "manifest.json"),
            "-CAfile", str(ca), "-purpose", "any", "-out", str(tmp / "verified"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def cms_print(tmp: Path, signature: bytes) -> str:
    (tmp / "signature").write_bytes(signature)
    return subprocess.run(
        ["openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp / "signature")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_signature_verifies_with_openssl(identity, certs_dir, tmp_path):
    parts = _build(identity)
    result = openssl_verify(tmp_path, parts.manifest, parts.signature, certs_dir / "ca.pem")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "verified").read_bytes() == parts.manifest


def test_tampered_manifest_fails_verification(identity, certs_dir, tmp_path):
    parts = _build(identity)
    tampered = parts.manifest.replace(b'"icon.png":"', b'"icon.png":"0')
    assert tampered != parts.manifest
    result = openssl_verify(tmp_path, tampered, parts.signature, certs_dir / "ca.pem")
    assert result.returncode != 0


def test_signature_from_another_ca_fails_verification(identity, tmp_path):
    other = tmp_path / "other"
    create_dev_chain(other, PASS_TYPE, TEAM)
    parts = _build(identity)
    result = openssl_verify(tmp_path, parts.manifest, parts.signature, other / "ca.pem")
    assert result.returncode != 0


def test_signature_has_signing_time_and_sha256(identity, tmp_path):
    printed = cms_print(tmp_path, _build(identity).signature)
    assert "signingTime" in printed
    assert "sha256" in printed
    assert "algorithm: sha1 " not in printed
    # Detached: the manifest is not inside the signature.
    assert "eContent: <ABSENT>" in printed


def test_signature_embeds_signer_and_intermediate(identity, certs_dir):
    signature = _build(identity).signature
    embedded = pkcs7.load_der_pkcs7_certificates(signature)
    subjects = {c.subject for c in embedded}
    assert identity.cert.subject in subjects
    assert identity.intermediate.subject in subjects
    ca_der = (certs_dir / "ca.pem").read_bytes()
    assert identity.intermediate.public_bytes(serialization.Encoding.PEM) == ca_der


def _signing_time(printed: str) -> datetime.datetime:
    """The signingTime attribute's value in ``openssl cms -print`` output."""
    match = re.search(
        r"object: signingTime \(1\.2\.840\.113549\.1\.9\.5\)\s+set:\s+"
        r"(UTCTIME|GENERALIZEDTIME):(\w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) GMT",
        printed,
    )
    assert match, printed
    when = datetime.datetime.strptime(match.group(2), "%b %d %H:%M:%S %Y")
    return when.replace(tzinfo=datetime.UTC)


def test_signature_carries_the_time_it_was_made(identity, tmp_path):
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    signature = identity.sign(b"manifest")
    after = datetime.datetime.now(datetime.UTC)
    printed = cms_print(tmp_path, signature)
    assert before <= _signing_time(printed) <= after
    # contentType, signingTime and messageDigest; no SMIMECapabilities (NoCapabilities).
    assert "contentType" in printed
    assert "messageDigest" in printed
    assert "(1.2.840.113549.1.9.15)" not in printed


_SIGN_IN_2051 = """
import datetime, sys
from pathlib import Path

class Later(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.datetime(2051, 3, 4, 5, 6, 7, tzinfo=tz)

datetime.datetime = Later  # before cryptography first asks Python for the time
from walletpass.passes.signing import SigningIdentity

identity = SigningIdentity.from_dir(Path(sys.argv[1]), None)
sys.stdout.buffer.write(identity.sign(b"manifest"))
"""


def test_signature_made_after_2049_carries_a_generalized_time(certs_dir, tmp_path):
    # UTCTime ends with 2049 (RFC 5652 5.3: GeneralizedTime from 2050 on). The process that
    # signs believes it is 2051: cryptography reads the time through Python's datetime.
    made = subprocess.run(
        [sys.executable, "-c", _SIGN_IN_2051, str(certs_dir)],
        capture_output=True,
        check=True,
    )
    printed = cms_print(tmp_path, made.stdout)
    when = _signing_time(printed)
    if when.year != 2051:
        pytest.skip("cryptography no longer reads the time through datetime.datetime.now")
    assert when == datetime.datetime(2051, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    assert "GENERALIZEDTIME:" in printed
    result = openssl_verify(tmp_path, b"manifest", made.stdout, certs_dir / "ca.pem")
    assert result.returncode == 0, result.stderr


def test_ec_key_signs_too(tmp_path):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.USER_ID, PASS_TYPE),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    ec_identity = SigningIdentity(cert=cert, key=key, intermediate=ca)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    parts = _build(ec_identity)
    result = openssl_verify(tmp_path, parts.manifest, parts.signature, tmp_path / "ca.pem")
    assert result.returncode == 0, result.stderr


def test_data_with_newlines_verifies(identity, certs_dir, tmp_path):
    # Binary option: no LF->CRLF canonicalisation of what is signed.
    data = b'{\n  "pass.json": "abc"\n}\n'
    result = openssl_verify(tmp_path, data, identity.sign(data), certs_dir / "ca.pem")
    assert result.returncode == 0, result.stderr


def test_manifest_lists_exactly_the_zip_files_with_sha1(identity):
    parts = _build(identity)
    with zipfile.ZipFile(io.BytesIO(parts.zip_bytes)) as zf:
        names = zf.namelist()
        contents = {n: zf.read(n) for n in names}
    manifest = json.loads(contents["manifest.json"])
    assert set(manifest) == set(names) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(contents[name], usedforsecurity=False).hexdigest() == digest
    assert contents["pass.json"] == parts.pass_json
    assert contents["manifest.json"] == parts.manifest
    assert contents["signature"] == parts.signature


def test_manifest_bytes_is_compact_and_sorted():
    assert manifest_bytes({"b": "2", "a": "1"}) == b'{"a":"1","b":"2"}'


def test_zip_layout_and_compression(identity):
    parts = _build(identity)
    with zipfile.ZipFile(io.BytesIO(parts.zip_bytes)) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    assert all(not n.startswith("/") and ".." not in n for n in infos)
    assert infos["icon.png"].compress_type == zipfile.ZIP_STORED
    # Per-pass entries are stored (Apple accepts either; it saves a deflate per pass).
    assert infos["pass.json"].compress_type == zipfile.ZIP_STORED
    assert infos["de.lproj/pass.strings"].compress_type == zipfile.ZIP_DEFLATED
    assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}


def test_assemble_of_cached_parts_equals_a_fresh_build(identity):
    parts = _build(identity)
    again = assemble_pkpass(parts.pass_json, parts.manifest, parts.signature, _files())
    assert again == parts.zip_bytes


def test_assemble_refuses_files_the_manifest_does_not_list(identity):
    parts = _build(identity)
    files = _files() | {"strip.png": PNG}
    with pytest.raises(ValueError, match="re-sign"):
        assemble_pkpass(parts.pass_json, parts.manifest, parts.signature, files)
    with pytest.raises(ValueError, match=r"pass\.json"):
        assemble_pkpass(_pass_json(points=1), parts.manifest, parts.signature, _files())


@pytest.mark.parametrize(
    "name", ["manifest.json", "signature", "pass.json", ".DS_Store", "__MACOSX/x.png", "../x"]
)
def test_build_refuses_reserved_and_stray_names(identity, name):
    with pytest.raises(ValueError, match=r"written by the builder|bad file name|macOS artefact"):
        _build(identity, files={name: b"x"})


def test_build_refuses_hashes_that_do_not_match_files(identity):
    with pytest.raises(ValueError, match="hashes do not match"):
        build_pkpass(_pass_json(), {"icon.png": PNG}, {}, identity)


def test_check_pass_json_matches(identity):
    good = {"passTypeIdentifier": PASS_TYPE, "teamIdentifier": TEAM}
    check_pass_json_matches(identity, good)
    with pytest.raises(CertificateError, match=r"'pass\.other'.*'pass\.test\.walletpass'"):
        check_pass_json_matches(identity, good | {"passTypeIdentifier": "pass.other"})
    with pytest.raises(CertificateError, match=r"'OTHER'.*'TEAMTEST01'"):
        check_pass_json_matches(identity, good | {"teamIdentifier": "OTHER"})


def test_identity_reads_ids_from_the_certificate(identity):
    assert identity.pass_type_id == PASS_TYPE
    assert identity.team_id == TEAM
    assert identity.not_after > identity.cert.not_valid_before_utc


def test_from_dir_errors_are_clear(tmp_path, certs_dir):
    with pytest.raises(CertificateError, match="walletpass certs dev"):
        SigningIdentity.from_dir(tmp_path / "missing", None)
    shutil.copy(certs_dir / "pass.pem", tmp_path / "pass.pem")
    with pytest.raises(CertificateError, match=r"wwdr\.pem or ca\.pem"):
        SigningIdentity.from_dir(tmp_path, None)
    shutil.copy(certs_dir / "ca.pem", tmp_path / "ca.pem")
    with pytest.raises(CertificateError, match="no private key"):
        SigningIdentity.from_dir(tmp_path, None)
    key_pem = (certs_dir / "pass.key").read_bytes()
    (tmp_path / "pass.key.sealed").write_bytes(seal("right-secret", key_pem))
    with pytest.raises(CertificateError, match="not set"):
        SigningIdentity.from_dir(tmp_path, None)
    with pytest.raises(CertificateError, match="wrong WALLETPASS_SECRET_KEY"):
        SigningIdentity.from_dir(tmp_path, "wrong-secret")
    assert SigningIdentity.from_dir(tmp_path, "right-secret").pass_type_id == PASS_TYPE


def test_from_dir_refuses_a_key_of_another_certificate(tmp_path, certs_dir):
    other = tmp_path / "other"
    create_dev_chain(other, PASS_TYPE, TEAM)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("pass.pem", "ca.pem"):
        shutil.copy(certs_dir / name, mixed / name)
    shutil.copy(other / "pass.key", mixed / "pass.key")
    with pytest.raises(CertificateError, match="does not belong"):
        SigningIdentity.from_dir(mixed, None)


def test_from_dir_refuses_an_intermediate_that_did_not_issue_the_cert(tmp_path, certs_dir):
    other = tmp_path / "other"
    create_dev_chain(other, PASS_TYPE, TEAM, organization="Someone else")
    for name in ("pass.pem", "pass.key"):
        shutil.copy(certs_dir / name, tmp_path / name)
    shutil.copy(other / "ca.pem", tmp_path / "wwdr.pem")
    with pytest.raises(CertificateError, match="G1/G4"):
        SigningIdentity.from_dir(tmp_path, None)


def test_load_identity_is_cached_until_the_files_change(tmp_path):
    clear_identity_cache()
    create_dev_chain(tmp_path, PASS_TYPE, TEAM)
    first = load_identity(tmp_path, None)
    assert load_identity(tmp_path, None) is first
    create_dev_chain(tmp_path, "pass.test.renewed", TEAM, force=True)
    renewed = load_identity(tmp_path, None)
    assert renewed is not first
    assert renewed.pass_type_id == "pass.test.renewed"
    clear_identity_cache()


# Bundles from the real templates: each must give a pass Wallet's signature check accepts.
def _template_dirs() -> list[Path]:
    if not TEMPLATES.is_dir():
        return []
    return sorted(p for p in TEMPLATES.iterdir() if (p / "pass.json").is_file())


@pytest.mark.parametrize(
    "template_dir", _template_dirs() or [None], ids=lambda p: getattr(p, "name", "none")
)
def test_each_template_bundle_verifies(template_dir, certs_dir, identity, tmp_path):
    if template_dir is None:
        pytest.skip("pass_templates/ has no templates yet (written by the templates helper)")
    try:
        from walletpass.passes import render, templates
    except ImportError as exc:
        pytest.skip(f"template modules not there yet: {exc}")
    from walletpass.cli.passes import static_variables
    from walletpass.config import Settings

    variables = static_variables(
        Settings(), "SER-1", identity.pass_type_id, identity.team_id, {"points": 250}
    )
    template = templates.load_template(template_dir)
    pass_json = render.render_pass_json(template, variables)
    check_pass_json_matches(identity, pass_json)
    files, hashes = render.bundle_files(template, variables)
    parts = build_pkpass(render.dumps_pass_json(pass_json), files, hashes, identity)

    result = openssl_verify(tmp_path, parts.manifest, parts.signature, certs_dir / "ca.pem")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(io.BytesIO(parts.zip_bytes)) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert set(manifest) == names - {"manifest.json", "signature"}
        for name, digest in manifest.items():
            assert hashlib.sha1(zf.read(name), usedforsecurity=False).hexdigest() == digest
    assert "icon.png" in names
    assert assemble_pkpass(parts.pass_json, parts.manifest, parts.signature, files) == (
        parts.zip_bytes
    )


class _FakeSigner:
    def sign(self, data: bytes) -> bytes:
        return b"signature over " + data[:16]


@pytest.mark.broken_pass  # signed by a stand-in signer: no real signature
@pytest.mark.parametrize("template_dir", _template_dirs(), ids=lambda p: p.name)
def test_spliced_manifest_and_flat_zip_match_the_plain_forms(template_dir):
    # build_pkpass splices pass.json's digest into the template's cached manifest and
    # writes the ZIP by hand: both must equal the plain forms, in either file order.
    from walletpass.passes import render, templates

    template = templates.load_template(template_dir)
    for points in (0, 1240):
        variables = {**templates.SAMPLE_VARIABLES, "points": points}
        pass_json = render.dumps_pass_json(render.render_pass_json(template, variables))
        files, hashes = render.bundle_files(template, variables)
        for order in (files, dict(reversed(list(files.items())))):
            parts = build_pkpass(pass_json, order, hashes, _FakeSigner())
            expected = manifest_bytes({**hashes, "pass.json": sha1_hex(pass_json)})
            assert parts.manifest == expected
            with zipfile.ZipFile(io.BytesIO(parts.zip_bytes)) as zf:
                assert zf.testzip() is None
                names = [info.filename for info in zf.infolist()]
                assert names == [*sorted(files), "pass.json", "manifest.json", "signature"]
                assert zf.read("pass.json") == pass_json
                assert zf.read("manifest.json") == expected
                assert zf.read("signature") == parts.signature
                for name, data in files.items():
                    assert zf.read(name) == data
            again = assemble_pkpass(pass_json, parts.manifest, parts.signature, files)
            assert again == parts.zip_bytes
