"""Build .pkpass bundles for the linter's tests by hand (zipfile, PKCS7SignatureBuilder),
so that a test can break any part of one without the service's builder refusing, and
without the conftest lint hook, which watches that builder, seeing them."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from walletpass.passes import render, templates
from walletpass.resources import PASS_TEMPLATES_DIR

PASS_TYPE = "pass.test.lint"
TEAM = "LINTTEAM01"
NOW = datetime.now(UTC)
_KEYS: dict[str, rsa.RSAPrivateKey] = {}


def _key(role: str) -> rsa.RSAPrivateKey:
    # One CA key and one pass key serve every chain here: generating RSA keys is slow.
    if role not in _KEYS:
        _KEYS[role] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[role]


@dataclass
class Chain:
    ca: x509.Certificate
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def make_chain(
    *,
    uid: str | None = PASS_TYPE,
    team: str = TEAM,
    cert_days: tuple[int, int] = (-1, 365),
    ca_days: tuple[int, int] = (-10, 3650),
    digital_signature: bool = True,
    purposes: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    ca_name: str = "Lint Test WWDR CA",
) -> Chain:
    ca_key = _key("ca")
    key = _key("pass")
    ca_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, ca_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + timedelta(days=ca_days[0]))
        .not_valid_after(NOW + timedelta(days=ca_days[1]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    attrs = [x509.NameAttribute(NameOID.USER_ID, uid)] if uid else []
    attrs += [
        x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {uid}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team),
    ]
    usage = x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=not digital_signature,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + timedelta(days=cert_days[0]))
        .not_valid_after(NOW + timedelta(days=cert_days[1]))
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(purposes)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Chain(ca, cert, key)


def sign(
    chain: Chain,
    data: bytes,
    *,
    options: tuple[pkcs7.PKCS7Options, ...] = (
        pkcs7.PKCS7Options.DetachedSignature,
        pkcs7.PKCS7Options.Binary,
    ),
    extra: tuple[x509.Certificate, ...] | None = None,
    digest: Any = None,
) -> bytes:
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
    builder = builder.add_signer(chain.cert, chain.key, digest or hashes.SHA256())
    for cert in (chain.ca,) if extra is None else extra:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, list(options))


def sample_pass_json() -> dict[str, Any]:
    template = templates.load_template(PASS_TEMPLATES_DIR / "points_tiers")
    out = render.render_pass_json(template, templates.SAMPLE_VARIABLES)
    out["passTypeIdentifier"] = PASS_TYPE
    out["teamIdentifier"] = TEAM
    return out


def sample_files() -> dict[str, bytes]:
    template = templates.load_template(PASS_TEMPLATES_DIR / "points_tiers")
    return dict(template.static_files)


@dataclass
class Bundle:
    """The parts of a pass, each replaceable before :meth:`zip`."""

    chain: Chain
    pass_json: dict[str, Any] = field(default_factory=sample_pass_json)
    files: dict[str, bytes] = field(default_factory=sample_files)

    def pass_bytes(self) -> bytes:
        return json.dumps(self.pass_json).encode()

    def manifest(self) -> dict[str, str]:
        all_files = {**self.files, "pass.json": self.pass_bytes()}
        return {n: hashlib.sha1(b, usedforsecurity=False).hexdigest() for n, b in all_files.items()}

    def zip(
        self,
        *,
        manifest: bytes | None = None,
        signature: bytes | None = None,
        drop: tuple[str, ...] = (),
        extra: dict[str, bytes] | None = None,
        prefix: str = "",
    ) -> bytes:
        manifest = manifest if manifest is not None else json.dumps(self.manifest()).encode()
        signature = signature if signature is not None else sign(self.chain, manifest)
        entries = {
            **self.files,
            "pass.json": self.pass_bytes(),
            "manifest.json": manifest,
            "signature": signature,
            **(extra or {}),
        }
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for name, data in entries.items():
                if name not in drop:
                    archive.writestr(prefix + name, data)
        return out.getvalue()
