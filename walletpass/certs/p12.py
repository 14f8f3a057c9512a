"""Import a real Pass Type ID certificate (.p12 exported from Keychain or the Apple portal).

The import checks everything Wallet would otherwise reject silently on the phone: the
password, validity dates, the pass type and team against the configuration, and that the
WWDR intermediate embedded in every pass is the one that issued the certificate (G4 for
certificates made since 2022, the renewed G1 for older ones).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from walletpass.certs.files import write_private
from walletpass.certs.trust import issued_by
from walletpass.passes.signing import (
    DEV_CA_FILE,
    PASS_CERT_FILE,
    PLAIN_KEY_FILE,
    SEALED_KEY_FILE,
    WWDR_CERT_FILE,
    CertificateError,
    cert_pass_type_id,
    cert_team_id,
    key_matches_cert,
    load_cert_file,
)
from walletpass.resources import APPLE_CERTS_DIR
from walletpass.security import seal

# Apple's public root and WWDR intermediates, shipped in the package
# (docs/certificates.md), so a real certificate imports without --wwdr.
BUNDLED_CERTS_DIR = APPLE_CERTS_DIR
_CERT_SUFFIXES = (".pem", ".cer", ".crt", ".der")
_APPLE_CA_URL = "https://www.apple.com/certificateauthority/"


@dataclass(frozen=True)
class ImportedIdentity:
    """What ``import_p12`` wrote, for the CLI to report (no key material)."""

    pass_type_id: str
    team_id: str | None
    not_after: dt.datetime
    issuer: str
    cert_path: Path
    wwdr_path: Path
    sealed_key_path: Path


def _fmt(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _wwdr_generation_hint(issuer: x509.Name) -> str:
    ou = issuer.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    generation = str(ou[0].value) if ou else ""
    if generation.upper().startswith("G") and generation[1:].isdigit():
        return (
            f"Apple WWDR {generation.upper()} (AppleWWDRCA{generation.upper()}.cer from "
            f"{_APPLE_CA_URL})"
        )
    if "Apple Worldwide Developer Relations" in issuer.rfc4514_string():
        # The first WWDR generation (G1) has OU "Apple Worldwide Developer Relations", not
        # "G1". Its 2013-2023 edition has expired; the renewed one (valid to 2030) has the
        # same subject and key.
        return (
            "Apple WWDR G1, the renewed edition valid to 2030 "
            f"(AppleWWDRCA.cer from {_APPLE_CA_URL})"
        )
    return "the intermediate certificate that issued it"


def _candidate_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES))
        else:
            out.append(path)
    return out


def pick_wwdr(
    cert: x509.Certificate,
    embedded: list[x509.Certificate],
    candidate_paths: list[Path],
    now: dt.datetime,
) -> x509.Certificate:
    """The intermediate whose subject is ``cert``'s issuer (and whose key signed it).

    Among several matches (the expired 2013 G1 and the renewed G1 share subject and key)
    a currently valid one with the latest notAfter wins.

    :raise CertificateError: naming the issuer that is needed when nothing matches.
    """
    candidates = list(embedded)
    for path in _candidate_files(candidate_paths):
        candidates.extend(load_cert_file(path))
    # Same subject is not enough: the signature is checked, so a look-alike never wins.
    matches = [c for c in candidates if issued_by(cert, c)]
    if not matches:
        raise CertificateError(
            "no WWDR intermediate matches the pass certificate's issuer "
            f"'{cert.issuer.rfc4514_string()}'; it needs {_wwdr_generation_hint(cert.issuer)}"
            " — pass it with --wwdr"
        )
    valid = [c for c in matches if c.not_valid_before_utc <= now <= c.not_valid_after_utc]
    if not valid:
        latest = max(matches, key=lambda c: c.not_valid_after_utc)
        raise CertificateError(
            f"the matching WWDR intermediate '{latest.subject.rfc4514_string()}' expired on "
            f"{_fmt(latest.not_valid_after_utc)}; download the renewed one from {_APPLE_CA_URL}"
        )
    return max(valid, key=lambda c: c.not_valid_after_utc)


_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _load_p12(
    data: bytes, p12_path: Path | str, password: bytes | None
) -> tuple[_PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """The .p12's private key, its certificate (checked to match) and the others it holds.

    :param p12_path: the file's name, for the messages (an upload has no path).
    """
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password or None)
    except ValueError as exc:
        # cryptography says "Invalid password or PKCS12 data" for a bad password and
        # "Could not deserialize PKCS12 data" for something that is not a PKCS#12 file.
        if "deserialize" in str(exc):
            raise CertificateError(f"{p12_path} is not a PKCS#12 (.p12) file") from None
        raise CertificateError(f"wrong password for {p12_path}") from None
    except UnsupportedAlgorithm:
        raise CertificateError(
            f"{p12_path} uses an encryption this OpenSSL build does not support; re-export it "
            "with `openssl pkcs12 -export` (AES-256)"
        ) from None
    # Without a key, cryptography reports the certificate as an "additional" one, so the
    # missing key is checked first: it is the usual mistake (exporting only the .cer).
    if key is None:
        raise CertificateError(
            f"no private key in {p12_path}; export the certificate together with its key "
            "(in Keychain Access select both)"
        )
    if cert is None:
        if extra:
            # OpenSSL pairs the key with the certificate it belongs to; none did.
            raise CertificateError(
                f"the private key in {p12_path} does not match its certificate "
                f"({extra[0].subject.rfc4514_string()}); export the certificate together "
                "with its own key"
            )
        raise CertificateError(f"no certificate in {p12_path}")
    if not isinstance(key, _PrivateKey):
        raise CertificateError(f"the key in {p12_path} is not an RSA or EC key")
    if not key_matches_cert(key, cert):
        raise CertificateError(f"the private key in {p12_path} does not match its certificate")
    return key, cert, list(extra)


def _check_identity(
    cert: x509.Certificate,
    p12_path: Path,
    now: dt.datetime,
    *,
    expected_pass_type_id: str | None,
    expected_team_id: str | None,
) -> tuple[str, str | None]:
    """The certificate's pass type id and team id, once it is a Pass Type ID certificate
    valid now and for the configured ids."""
    pass_type_id = cert_pass_type_id(cert)
    if pass_type_id is None:
        raise CertificateError(
            f"the certificate in {p12_path} is not a Pass Type ID certificate: its subject "
            f"has no UID ({cert.subject.rfc4514_string()})"
        )
    team_id = cert_team_id(cert)
    if now > cert.not_valid_after_utc:
        raise CertificateError(
            f"the certificate for {pass_type_id} expired on {_fmt(cert.not_valid_after_utc)}"
        )
    if now < cert.not_valid_before_utc:
        raise CertificateError(
            f"the certificate for {pass_type_id} is not valid before "
            f"{_fmt(cert.not_valid_before_utc)}"
        )
    if expected_pass_type_id and pass_type_id != expected_pass_type_id:
        raise CertificateError(
            f"the certificate is for pass type {pass_type_id!r} but the configured pass type "
            f"id is {expected_pass_type_id!r} (WALLETPASS_PASS_TYPE_ID)"
        )
    if expected_team_id and team_id != expected_team_id:
        raise CertificateError(
            f"the certificate is for team {team_id!r} but the configured team id is "
            f"{expected_team_id!r} (WALLETPASS_TEAM_ID)"
        )
    return pass_type_id, team_id


@dataclass(frozen=True, eq=False)
class CheckedP12:
    """A .p12 that passed every check: what signs with it (kept in memory only)."""

    key: _PrivateKey
    cert: x509.Certificate
    wwdr: x509.Certificate
    pass_type_id: str
    team_id: str | None

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def check_p12(
    data: bytes,
    name: Path | str,
    password: bytes | None,
    *,
    wwdr_candidates: list[Path] | None = None,
    expected_pass_type_id: str | None = None,
    expected_team_id: str | None = None,
    now: dt.datetime | None = None,
) -> CheckedP12:
    """Every check an import makes, on a .p12's bytes, writing nothing: the password, the
    key matching the certificate, a Pass Type ID certificate valid now (and for the
    expected ids when given), and the WWDR intermediate that really issued it.

    :param name: the file's name, for the messages.
    :raise CertificateError: with a message naming the problem and the values involved.
    """
    now = now or dt.datetime.now(dt.UTC)
    key, cert, extra = _load_p12(data, name, password)
    pass_type_id, team_id = _check_identity(
        cert,
        Path(name),
        now,
        expected_pass_type_id=expected_pass_type_id,
        expected_team_id=expected_team_id,
    )
    candidate_paths = [Path(p) for p in (wwdr_candidates or [])]
    if BUNDLED_CERTS_DIR.is_dir():
        candidate_paths.append(BUNDLED_CERTS_DIR)
    wwdr = pick_wwdr(cert, extra, candidate_paths, now)
    return CheckedP12(key, cert, wwdr, pass_type_id, team_id)


def import_p12(
    p12_path: Path,
    password: bytes | None,
    out_dir: Path,
    secret_key: str,
    *,
    wwdr_candidates: list[Path] | None = None,
    expected_pass_type_id: str | None = None,
    expected_team_id: str | None = None,
    now: dt.datetime | None = None,
) -> ImportedIdentity:
    """Check a Pass Type ID .p12 and write ``pass.pem``, ``wwdr.pem``, ``pass.key.sealed``.

    The private key is stored only sealed with ``secret_key`` (AES-GCM), never as plaintext.
    A plaintext ``pass.key`` or ``ca.pem`` left in ``out_dir`` by a dev chain is removed,
    since it belongs to the certificate being replaced.

    :raise CertificateError: with a message naming the problem and the values involved.
    """
    p12_path = Path(p12_path)
    out_dir = Path(out_dir)
    if not secret_key:
        raise CertificateError(
            "WALLETPASS_SECRET_KEY is not set; it is needed to seal the imported private key"
        )
    checked = check_p12(
        read_p12(p12_path),
        p12_path,
        password,
        wwdr_candidates=wwdr_candidates,
        expected_pass_type_id=expected_pass_type_id,
        expected_team_id=expected_team_id,
        now=now,
    )
    cert, wwdr = checked.cert, checked.wwdr
    pem = serialization.Encoding.PEM
    cert_path = out_dir / PASS_CERT_FILE
    wwdr_path = out_dir / WWDR_CERT_FILE
    sealed_path = out_dir / SEALED_KEY_FILE
    # Key first: a crash part-way leaves a sealed key that the old pass.pem does not match,
    # which SigningIdentity reports clearly, rather than a new cert with an old key.
    write_private(sealed_path, seal(secret_key, checked.key_pem))
    write_private(cert_path, cert.public_bytes(pem))
    write_private(wwdr_path, wwdr.public_bytes(pem))
    for stale in (PLAIN_KEY_FILE, DEV_CA_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    return ImportedIdentity(
        pass_type_id=checked.pass_type_id,
        team_id=checked.team_id,
        not_after=cert.not_valid_after_utc,
        issuer=cert.issuer.rfc4514_string(),
        cert_path=cert_path,
        wwdr_path=wwdr_path,
        sealed_key_path=sealed_path,
    )


def read_p12(p12_path: Path) -> bytes:
    """:raise CertificateError: the file cannot be read."""
    try:
        return Path(p12_path).read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read {p12_path}: {exc.strerror}") from None
