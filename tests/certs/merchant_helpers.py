"""Two merchants with development chains of their own, and how to check whose chain a pass
or a push used (the isolation tests of issue 22)."""

from __future__ import annotations

import io
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import factories
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from walletpass.certs import merchant as merchant_certs


@dataclass
class Shop:
    merchant_id: int
    slug: str
    program_id: int
    pass_type_id: str | None  # None: no certificate of its own
    ca_file: Path | None


def make_shop(runtime, settings, tmp: Path, slug: str, pass_type_id: str | None) -> Shop:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s, slug=slug)
        p = factories.program(s, m, "points")
        ca_file = None
        if pass_type_id is not None:
            _, ca = merchant_certs.install_dev_chain(
                s, settings, m.id, pass_type_id, f"TEAM{slug.upper()}"[:10], f"{slug} dev"
            )
            ca_file = tmp / f"{slug}-ca.pem"
            ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        return Shop(m.id, slug, p.id, pass_type_id, ca_file)


def new_card(runtime, settings, shop: Shop):  # type: ignore[no-untyped-def]
    """A member's pass of ``shop``: (id, serial, pass type, auth token)."""
    from walletpass.loyalty.models import Program

    with runtime.transaction() as s:
        program = s.get(Program, shop.program_id)
        row = factories.member_pass(s, settings, factories.member(s, program))
        return row.id, row.serial, row.pass_type_id, row.auth_token


def pkpass_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def cms_verifies(data: bytes, ca_file: Path, workdir: Path) -> bool:
    """``openssl cms -verify`` of the pass's signature over its manifest with only
    ``ca_file`` trusted."""
    parts = pkpass_parts(data)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "manifest.json").write_bytes(parts["manifest.json"])
    (workdir / "signature").write_bytes(parts["signature"])
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER",
         "-in", str(workdir / "signature"), "-content", str(workdir / "manifest.json"),
         "-CAfile", str(ca_file), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return result.returncode == 0


def signer_uid(data: bytes) -> str:
    """The UID (pass type) of the certificate that signed the pass."""
    certs = pkcs7.load_der_pkcs7_certificates(pkpass_parts(data)["signature"])
    uids = [
        c.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value
        for c in certs
        if c.subject.get_attributes_for_oid(NameOID.USER_ID)
    ]
    assert len(uids) == 1, uids
    return str(uids[0])


def signer_cert(data: bytes) -> x509.Certificate:
    certs = pkcs7.load_der_pkcs7_certificates(pkpass_parts(data)["signature"])
    return next(c for c in certs if c.subject.get_attributes_for_oid(NameOID.USER_ID))
