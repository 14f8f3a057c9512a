"""A local development signing chain shaped like Apple's, for tests and the embedded default.

Passes signed with it verify with ``openssl cms -verify`` against ``ca.pem`` but will not
open on a real iPhone: only Apple's WWDR can issue certificates Wallet trusts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from walletpass.certs.files import write_private
from walletpass.passes.signing import (
    DEV_CA_FILE,
    PASS_CERT_FILE,
    PLAIN_KEY_FILE,
    SEALED_KEY_FILE,
    WWDR_CERT_FILE,
    CertificateError,
)

CA_VALIDITY = dt.timedelta(days=3650)
PASS_VALIDITY = dt.timedelta(days=365)
# Tolerate a little clock skew between the machine that makes the chain and the verifier.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class DevChain:
    """Paths of a development chain, and the identifiers baked into its pass certificate."""

    ca_path: Path
    cert_path: Path
    key_path: Path
    pass_type_id: str
    team_id: str
    not_after: dt.datetime


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def create_dev_chain(
    out_dir: Path,
    pass_type_id: str,
    team_id: str,
    organization: str = "walletpass dev",
    *,
    force: bool = False,
    now: dt.datetime | None = None,
) -> DevChain:
    """Write ``ca.pem``, ``pass.pem`` and ``pass.key`` (0600) into ``out_dir``.

    The CA plays Apple's WWDR intermediate and root at once; the pass certificate carries
    UID=<pass type id> and OU=<team id> like a real Pass Type ID certificate. The CA key is
    not kept: nothing else is meant to be signed by this CA.

    :raise CertificateError: when a file exists and ``force`` is false, or an id is empty.
    """
    if not pass_type_id or not team_id:
        raise CertificateError("a pass type id and a team id are needed for a dev chain")
    out_dir = Path(out_dir)
    paths = [out_dir / n for n in (DEV_CA_FILE, PASS_CERT_FILE, PLAIN_KEY_FILE)]
    # An imported identity in the same folder would take precedence over the dev chain
    # (wwdr.pem over ca.pem, the sealed key over pass.key), so it counts as existing too.
    stale = [out_dir / n for n in (WWDR_CERT_FILE, SEALED_KEY_FILE)]
    existing = [p for p in paths + stale if p.exists()]
    if existing and not force:
        raise CertificateError(
            f"{', '.join(str(p) for p in existing)} already exist; use --force to replace"
        )

    ca_cert, pass_cert, pass_key = make_dev_certificates(
        pass_type_id, team_id, organization, now=now
    )
    pem = serialization.Encoding.PEM
    for path in stale:
        path.unlink(missing_ok=True)
    ca_path, cert_path, key_path = paths
    write_private(ca_path, ca_cert.public_bytes(pem), mode=0o644)
    write_private(cert_path, pass_cert.public_bytes(pem), mode=0o644)
    write_private(
        key_path,
        pass_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return DevChain(
        ca_path=ca_path,
        cert_path=cert_path,
        key_path=key_path,
        pass_type_id=pass_type_id,
        team_id=team_id,
        not_after=pass_cert.not_valid_after_utc,
    )


def make_dev_certificates(
    pass_type_id: str,
    team_id: str,
    organization: str = "walletpass dev",
    *,
    now: dt.datetime | None = None,
) -> tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    """A fresh development CA and a pass certificate it issued, with the pass key, in
    memory: (CA certificate, pass certificate, pass key). A new CA each time, so two
    chains never verify each other's passes.

    :raise CertificateError: an id is empty.
    """
    if not pass_type_id or not team_id:
        raise CertificateError("a pass type id and a team id are needed for a dev chain")
    now = now or dt.datetime.now(dt.UTC)
    ca_key, pass_key = _new_key(), _new_key()
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} Development WWDR CA"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pass_name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, pass_type_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    not_after = now + PASS_VALIDITY
    pass_cert = (
        x509.CertificateBuilder()
        .subject_name(pass_name)
        .issuer_name(ca_name)
        .public_key(pass_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # clientAuth: the same certificate authenticates to APNs for pass update pushes.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(pass_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    return ca_cert, pass_cert, pass_key
