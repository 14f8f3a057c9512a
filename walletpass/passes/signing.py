"""The pass-signing identity: Pass Type ID certificate, its key, and the issuing intermediate.

A pkpass ``signature`` is a detached, DER-encoded PKCS#7/CMS SignedData over manifest.json,
signed with SHA-256, carrying signingTime (Wallet rejects a signature without a signing
date) and embedding the signer certificate plus the WWDR intermediate that issued it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from walletpass.security import SealError, unseal

PASS_CERT_FILE = "pass.pem"  # noqa: S105 (a file name, not a password)
WWDR_CERT_FILE = "wwdr.pem"
DEV_CA_FILE = "ca.pem"
PLAIN_KEY_FILE = "pass.key"
SEALED_KEY_FILE = "pass.key.sealed"

# DetachedSignature: Wallet wants the manifest outside the signature. Binary: sign the
# exact bytes, no MIME canonicalisation (LF->CRLF would break verification of any manifest
# containing a newline). NoCapabilities: leaves out the SMIMECapabilities attribute, which
# lists ciphers for an encrypted reply and means nothing to Wallet. Never NoAttributes
# (drops signingTime) or NoCerts (drops the chain).
_SIGN_OPTIONS = [
    pkcs7.PKCS7Options.DetachedSignature,
    pkcs7.PKCS7Options.Binary,
    pkcs7.PKCS7Options.NoCapabilities,
]

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateError(ValueError):
    """The signing certificates are missing, unreadable, or do not fit together."""


def _no_certs_hint(certs_dir: Path) -> str:
    return (
        f"run `walletpass certs dev --out {certs_dir}` for a development chain, or "
        f"`walletpass certs import --p12 <file> --out {certs_dir}` for a real Pass Type ID "
        "certificate"
    )


def _name_value(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return None
    value = attrs[0].value
    return value.decode() if isinstance(value, bytes) else value


def cert_pass_type_id(cert: x509.Certificate) -> str | None:
    """The pass type identifier in a Pass Type ID certificate's subject UID, if any."""
    return _name_value(cert.subject, NameOID.USER_ID)


def cert_team_id(cert: x509.Certificate) -> str | None:
    """The team identifier in a Pass Type ID certificate's subject OU, if any."""
    return _name_value(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)


def cert_fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def key_matches_cert(key: SigningKey, cert: x509.Certificate) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, fmt) == cert.public_key().public_bytes(enc, fmt)


def load_cert_file(path: Path) -> list[x509.Certificate]:
    """All certificates in a PEM (one or more) or DER file.

    :raise CertificateError: when the file is unreadable or holds no certificate.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read certificate file {path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(f"{path} is not a PEM or DER X.509 certificate") from None
    return certs


@dataclass(frozen=True, eq=False)
class SigningIdentity:
    """What signs passes: the Pass Type ID certificate, its private key, and its issuer."""

    cert: x509.Certificate
    key: SigningKey
    intermediate: x509.Certificate

    def __post_init__(self) -> None:
        if not isinstance(self.key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CertificateError("the pass signing key must be an RSA or EC private key")
        if not key_matches_cert(self.key, self.cert):
            raise CertificateError("the private key does not belong to the pass certificate")
        if cert_pass_type_id(self.cert) is None:
            raise CertificateError(
                "the pass certificate has no UID in its subject; it is not a Pass Type ID "
                f"certificate (subject: {self.cert.subject.rfc4514_string()})"
            )
        if self.cert.issuer != self.intermediate.subject:
            raise CertificateError(
                "the intermediate certificate did not issue the pass certificate: the pass "
                f"certificate's issuer is '{self.cert.issuer.rfc4514_string()}' but the "
                f"intermediate is '{self.intermediate.subject.rfc4514_string()}' "
                "(a WWDR G1/G4 mix-up makes Wallet refuse the pass)"
            )

    @property
    def pass_type_id(self) -> str:
        value = cert_pass_type_id(self.cert)
        assert value is not None  # checked in __post_init__
        return value

    @property
    def team_id(self) -> str | None:
        return cert_team_id(self.cert)

    @property
    def not_after(self) -> datetime:
        return self.cert.not_valid_after_utc

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate (hex): which certificate this is, in caches, APNs
        connections and pauses."""
        return cert_fingerprint(self.cert)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    def sign(self, data: bytes) -> bytes:
        """A detached DER PKCS#7 signature over ``data`` (a manifest or a personalization token).

        Made by ``cryptography``'s PKCS7SignatureBuilder: SHA-256, PKCS#1 v1.5 for an RSA
        key, signed attributes contentType, signingTime (UTCTime, GeneralizedTime from
        2050) and messageDigest, the signer and intermediate certificates embedded.
        """
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(self.cert, self.key, hashes.SHA256())
            .add_certificate(self.intermediate)
            .sign(serialization.Encoding.DER, _SIGN_OPTIONS)
        )

    @classmethod
    def from_dir(cls, certs_dir: Path, secret_key: str | None) -> SigningIdentity:
        """Load ``pass.pem``, ``wwdr.pem`` (or a dev ``ca.pem``) and the key from ``certs_dir``.

        The key is ``pass.key.sealed`` (written by ``certs import``, opened with the secret
        key) or, for a development chain, the plaintext ``pass.key``.

        :raise CertificateError: with what is missing or wrong, and how to fix it.
        """
        certs_dir = Path(certs_dir)
        pass_pem = certs_dir / PASS_CERT_FILE
        if not pass_pem.is_file():
            raise CertificateError(
                f"no pass certificate at {pass_pem}; {_no_certs_hint(certs_dir)}"
            )
        cert = load_cert_file(pass_pem)[0]

        for name in (WWDR_CERT_FILE, DEV_CA_FILE):
            if (certs_dir / name).is_file():
                intermediate = load_cert_file(certs_dir / name)[0]
                break
        else:
            raise CertificateError(
                f"no intermediate certificate ({WWDR_CERT_FILE} or {DEV_CA_FILE}) in "
                f"{certs_dir}; {_no_certs_hint(certs_dir)}"
            )

        key = _load_key(certs_dir, secret_key)
        return cls(cert=cert, key=key, intermediate=intermediate)


def _load_key(certs_dir: Path, secret_key: str | None) -> SigningKey:
    sealed = certs_dir / SEALED_KEY_FILE
    plain = certs_dir / PLAIN_KEY_FILE
    # The sealed key wins: it is what `certs import` writes, and a plaintext key left from an
    # earlier dev chain would not match the imported certificate anyway.
    if sealed.is_file():
        if not secret_key:
            raise CertificateError(
                f"{sealed} is sealed with WALLETPASS_SECRET_KEY, which is not set"
            )
        try:
            pem = unseal(secret_key, sealed.read_bytes())
        except SealError as exc:
            raise CertificateError(f"cannot open {sealed}: {exc}") from None
        source = sealed
    elif plain.is_file():
        pem = plain.read_bytes()
        source = plain
    else:
        raise CertificateError(
            f"no private key ({SEALED_KEY_FILE} or {PLAIN_KEY_FILE}) in {certs_dir}; "
            f"{_no_certs_hint(certs_dir)}"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CertificateError(f"{source} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{source} must hold an RSA or EC private key")
    return key


def _stat_key(certs_dir: Path) -> tuple[tuple[str, int, int], ...]:
    stamp = []
    for name in (PASS_CERT_FILE, WWDR_CERT_FILE, DEV_CA_FILE, PLAIN_KEY_FILE, SEALED_KEY_FILE):
        try:
            st = os.stat(certs_dir / name)
        except FileNotFoundError:
            continue
        stamp.append((name, st.st_mtime_ns, st.st_size))
    return tuple(stamp)


@functools.lru_cache(maxsize=8)
def _cached_identity(
    certs_dir: Path, secret_key: str | None, _stamp: tuple[tuple[str, int, int], ...]
) -> SigningIdentity:
    return SigningIdentity.from_dir(certs_dir, secret_key)


def load_identity(certs_dir: Path, secret_key: str | None) -> SigningIdentity:
    """:meth:`SigningIdentity.from_dir`, parsed once per process.

    Keyed by the directory and the files' mtimes and sizes, so replacing the certificates
    (a renewal, `certs import`) is picked up without a restart. Errors are not cached.
    """
    certs_dir = Path(certs_dir).resolve()
    return _cached_identity(certs_dir, secret_key, _stat_key(certs_dir))


def clear_identity_cache() -> None:
    """Forget every loaded identity (tests; after rotating the secret key)."""
    _cached_identity.cache_clear()
