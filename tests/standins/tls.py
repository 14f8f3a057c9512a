"""Throw-away PKI for the APNs stand-in: a CA, a server cert and a Pass Type ID-shaped client cert.

Only for tests and benchmarks. The service's own development chain comes from
``walletpass certs dev``; this one exists so a test can build a fresh, isolated
trust setup in a temp dir without touching it.

Keys are EC P-256 by default because generating three RSA-2048 keys per test
run costs noticeably more time than the tests themselves; ``key_type="rsa"``
gives RSA-2048 like Apple's real Pass Type ID certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_PASS_TYPE_ID = "pass.dev.walletpass.test"
DEFAULT_TEAM_ID = "TEST123456"


@dataclass(frozen=True)
class PKI:
    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # Cert and key concatenated in one PEM: what aioapns' ``client_cert=`` wants.
    client_combined: Path
    pass_type_id: str
    team_id: str


def _new_key(key_type: str):
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    # Private keys get 0600 like real key material would, even in a temp dir.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Back-dated a little so clock skew between test processes can't matter.
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def make_test_pki(
    directory: str | Path,
    *,
    pass_type_id: str = DEFAULT_PASS_TYPE_ID,
    team_id: str = DEFAULT_TEAM_ID,
    key_type: str = "ec",
) -> PKI:
    """Create CA + server (127.0.0.1/localhost) + client certs under ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    ca_key = _new_key(key_type)
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "walletpass tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, "walletpass test CA"),
        ]
    )
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), 30)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())

    def leaf(subject: x509.Name, key, eku, san: x509.SubjectAlternativeName | None):
        b = (
            _builder(subject, ca_name, key.public_key(), 30)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(aki, critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=key_type == "rsa",
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        )
        if san is not None:
            b = b.add_extension(san, critical=False)
        return b.sign(ca_key, hashes.SHA256())

    server_key = _new_key(key_type)
    server_cert = leaf(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
        server_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName(
            [
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost"),
            ]
        ),
    )

    # Shaped like Apple's "Pass Type ID" certificate subject: UID carries the
    # pass type identifier (APNs topic), OU the team identifier.
    client_key = _new_key(key_type)
    client_cert = leaf(
        x509.Name(
            [
                x509.NameAttribute(NameOID.USER_ID, pass_type_id),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "walletpass tests"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            ]
        ),
        client_key,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        None,
    )

    return PKI(
        directory=d,
        ca_cert=_write(d / "ca.pem", _cert_pem(ca_cert)),
        ca_key=_write(d / "ca.key", _key_pem(ca_key), private=True),
        server_cert=_write(d / "server.pem", _cert_pem(server_cert)),
        server_key=_write(d / "server.key", _key_pem(server_key), private=True),
        client_cert=_write(d / "client.pem", _cert_pem(client_cert)),
        client_key=_write(d / "client.key", _key_pem(client_key), private=True),
        client_combined=_write(
            d / "client-combined.pem",
            _cert_pem(client_cert) + _key_pem(client_key),
            private=True,
        ),
        pass_type_id=pass_type_id,
        team_id=team_id,
    )
