"""Checks of a pkpass ``signature``: a detached CMS SignedData over manifest.json, made
with a Pass Type ID certificate that the embedded Apple WWDR intermediate issued.

Follows Apple's "Building a pass" and "Pass" pages (passTypeIdentifier and
teamIdentifier must match the certificate) and the CMS layout of RFC 5652.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from walletpass.certs.trust import apple_root, issued_by
from walletpass.passes.lint.der import DerError, Tlv, oid, parse_one
from walletpass.passes.lint.findings import Report

_SIGNED_DATA = "1.2.840.113549.1.7.2"
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_TIME = "1.2.840.113549.1.9.5"
_RSA_PSS = "1.2.840.113549.1.1.10"
_DIGESTS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1.3.14.3.2.26": ("sha1", hashes.SHA1),
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
}
_SIG = "signature"


@dataclass
class _Signed:
    certs: list[x509.Certificate]
    detached: bool
    digest_oid: str
    signature_oid: str
    signature: bytes
    issuer_der: bytes | None  # the signer's IssuerAndSerialNumber, or its key id
    serial: int | None
    key_id: bytes | None
    signed_attrs: Tlv | None


@functools.lru_cache(maxsize=64)
def _certificate(der: bytes) -> x509.Certificate:
    # The same two certificates come in every pass a service signs: parse them once.
    return x509.load_der_x509_certificate(der)


def _parse(data: bytes) -> _Signed:
    top, end = parse_one(data)
    if end != len(data) or top.tag != 0x30:
        raise DerError("not one DER SEQUENCE")
    content_type, wrapped = top.children()[:2]
    if oid(content_type) != _SIGNED_DATA or wrapped.tag != 0xA0:
        raise DerError("not a CMS SignedData")
    signed = wrapped.children()[0].children()
    encap = signed[2].children()
    certs: list[x509.Certificate] = []
    infos: Tlv | None = None
    for element in signed[3:]:
        if element.tag == 0xA0:
            certs = [_certificate(c.raw) for c in element.children()]
        elif element.tag == 0x31:
            infos = element
    if infos is None or not infos.children():
        raise DerError("no SignerInfo")
    info = infos.children()[0].children()
    sid = info[1]
    issuer_der = serial = key_id = None
    if sid.tag == 0x30:
        issuer, number = sid.children()
        issuer_der, serial = issuer.raw, int.from_bytes(number.content, "big", signed=True)
    else:
        key_id = sid.content
    rest = info[3:]
    attrs = rest.pop(0) if rest and rest[0].tag == 0xA0 else None
    return _Signed(
        certs=certs,
        detached=len(encap) < 2,
        digest_oid=oid(info[2].children()[0]),
        signature_oid=oid(rest[0].children()[0]),
        signature=rest[1].content,
        issuer_der=issuer_der,
        serial=serial,
        key_id=key_id,
        signed_attrs=attrs,
    )


def _attributes(attrs: Tlv) -> dict[str, Tlv]:
    out = {}
    for attr in attrs.children():
        kind, values = attr.children()
        out[oid(kind)] = values.children()[0]
    return out


def _time(value: Tlv) -> datetime:
    text = value.content.decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if value.tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


@functools.lru_cache(maxsize=64)
def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    # A service signs every pass with the same chain: its checks are made once.
    return issued_by(cert, issuer)


def _signer(signed: _Signed) -> x509.Certificate | None:
    for cert in signed.certs:
        if signed.serial is not None:
            if cert.serial_number == signed.serial and signed.issuer_der == _issuer_der(cert):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == signed.key_id:
                return cert
    return None


def _issuer_der(cert: x509.Certificate) -> bytes:
    return cert.issuer.public_bytes()


def _verify(cert: x509.Certificate, signed: _Signed, data: bytes) -> bool:
    algorithm = _DIGESTS[signed.digest_oid][1]()
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signed.signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signed.signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def check_signature(
    report: Report,
    signature: bytes,
    manifest: bytes,
    pass_json: Mapping[str, Any] | None,
    trust: Sequence[x509.Certificate] = (),
) -> None:
    """Add what is wrong with ``signature`` over ``manifest`` to ``report``.

    :param pass_json: the parsed pass.json, to compare its identifiers with the
        certificate's (None when it could not be read).
    :param trust: certificates to accept as a chain's root besides Apple's (a dev CA).
    """
    try:
        signed = _parse(signature)
    except (DerError, IndexError, ValueError, UnicodeDecodeError):
        report.error(
            "signature-unreadable",
            _SIG,
            "The signature file is not a DER-encoded CMS (PKCS #7) SignedData, so Wallet "
            "cannot check it. Sign manifest.json with a detached DER PKCS #7 signature.",
        )
        return
    if not signed.detached:
        report.error(
            "signature-not-detached",
            _SIG,
            "The signature embeds the signed content. Wallet expects a detached signature "
            "over manifest.json; sign with the detached option.",
        )
    signer = _signer(signed)
    if signer is None:
        report.error(
            "signature-no-signer",
            _SIG,
            "The signer's certificate is not embedded in the signature, so Wallet cannot "
            "check it. Embed the Pass Type ID certificate (and the WWDR intermediate).",
        )
        return
    signing_time = _check_content(report, signed, signer, manifest)
    _check_certificate(report, signer, pass_json)
    _check_chain(report, signer, signed.certs, signing_time, trust)


def _check_content(
    report: Report, signed: _Signed, signer: x509.Certificate, manifest: bytes
) -> datetime | None:
    """Digest, signature value and signingTime; the signing time, if any."""
    if signed.digest_oid not in _DIGESTS or signed.signature_oid == _RSA_PSS:
        report.error(
            "signature-algorithm",
            _SIG,
            "The signature uses a digest or padding Wallet does not check (use SHA-256 "
            "with PKCS #1 v1.5 padding for an RSA key).",
        )
        return None
    name = _DIGESTS[signed.digest_oid][0]
    attrs = _attributes(signed.signed_attrs) if signed.signed_attrs is not None else {}
    if signed.signed_attrs is not None:
        digest = attrs.get(_MESSAGE_DIGEST)
        expected = hashlib.new(name, manifest, usedforsecurity=False).digest()
        # The signature covers the attributes re-tagged as a SET (RFC 5652, 5.4).
        covered = b"\x31" + signed.signed_attrs.raw[1:]
        valid = digest is not None and digest.content == expected
        valid = valid and _CONTENT_TYPE in attrs and _verify(signer, signed, covered)
    else:
        valid = _verify(signer, signed, manifest)
    if not valid:
        report.error(
            "signature-invalid",
            _SIG,
            "The signature does not verify against manifest.json: the manifest changed "
            "after signing, or it was signed with another key. Sign the exact manifest "
            "bytes you ship (binary mode, no newline conversion).",
        )
    if _SIGNING_TIME not in attrs:
        report.error(
            "signature-no-signing-time",
            _SIG,
            'The signature has no signingTime attribute; Wallet says "Signature must '
            'contain a signing date". Do not sign with the no-attributes option.',
        )
        return None
    try:
        return _time(attrs[_SIGNING_TIME])
    except (ValueError, UnicodeDecodeError):
        report.error(
            "signature-no-signing-time",
            _SIG,
            "The signature's signingTime cannot be read as a UTCTime or GeneralizedTime.",
        )
        return None


def _subject(cert: x509.Certificate, attr: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(attr)
    if not values:
        return None
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else value


def _check_certificate(
    report: Report, signer: x509.Certificate, pass_json: Mapping[str, Any] | None
) -> None:
    uid = _subject(signer, NameOID.USER_ID)
    if uid is None:
        report.error(
            "cert-not-pass-type-id",
            _SIG,
            "The signing certificate has no UID in its subject, so it is not a Pass Type "
            f"ID certificate ({signer.subject.rfc4514_string()}). Create one for your pass "
            "type in Apple's developer account and sign with it.",
        )
    elif pass_json is not None and pass_json.get("passTypeIdentifier") != uid:
        report.error(
            "cert-pass-type-mismatch",
            "/passTypeIdentifier",
            f"pass.json says passTypeIdentifier {pass_json.get('passTypeIdentifier')!r} but "
            f"the certificate is for {uid!r}; Wallet refuses the pass. Use the certificate's "
            "pass type identifier, or sign with that pass type's certificate.",
        )
    team = _subject(signer, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if pass_json is not None and uid is not None and pass_json.get("teamIdentifier") != team:
        report.error(
            "cert-team-mismatch",
            "/teamIdentifier",
            f"pass.json says teamIdentifier {pass_json.get('teamIdentifier')!r} but the "
            f"certificate's team (its OU) is {team!r}; Wallet refuses the pass.",
        )
    _check_usage(report, signer)


def _check_usage(report: Report, signer: x509.Certificate) -> None:
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        report.error(
            "cert-key-usage",
            _SIG,
            "The signing certificate's key usage does not allow digital signatures, so "
            "the signature is not valid for it. Sign with a Pass Type ID certificate.",
        )
    try:
        purposes = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(
        purposes
    ):
        report.warning(
            "cert-purpose",
            _SIG,
            "The signing certificate is not allowed for TLS client authentication, which "
            "pushing pass updates to APNs with it needs: passes open but never update.",
        )


def _generation(cert: x509.Certificate) -> str:
    """The WWDR generation that issued ``cert`` (its issuer's OU), in words."""
    values = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ou = str(values[0].value) if values else ""
    if ou.startswith("G") and ou[1:].isdigit():
        return f"WWDR {ou}"
    if ou == "Apple Worldwide Developer Relations":
        return "WWDR G1"
    return repr(cert.issuer.rfc4514_string())


def _check_chain(
    report: Report,
    signer: x509.Certificate,
    certs: Sequence[x509.Certificate],
    signing_time: datetime | None,
    trust: Sequence[x509.Certificate],
) -> None:
    if signing_time is not None and not (
        signer.not_valid_before_utc <= signing_time <= signer.not_valid_after_utc
    ):
        report.error(
            "cert-expired",
            _SIG,
            f"The pass was signed on {signing_time:%Y-%m-%d} but the signing certificate "
            f"is valid only from {signer.not_valid_before_utc:%Y-%m-%d} to "
            f"{signer.not_valid_after_utc:%Y-%m-%d}. Renew the Pass Type ID certificate.",
        )
    others = [c for c in certs if c != signer]
    issuer = next((c for c in others if _issued(signer, c)), None)
    if issuer is None:
        found = ", ".join(c.subject.rfc4514_string() for c in others) or "none"
        report.error(
            "cert-wrong-intermediate",
            _SIG,
            f"No embedded certificate issued the signing certificate, which {_generation(signer)} "
            f"issued (embedded: {found}). Embed the WWDR intermediate whose subject is the "
            "certificate's issuer; a G1/G4 mix-up is the most common reason passes do not open.",
        )
        return
    if signing_time is not None and not (
        issuer.not_valid_before_utc <= signing_time <= issuer.not_valid_after_utc
    ):
        report.error(
            "intermediate-expired",
            _SIG,
            f"The embedded intermediate ({issuer.subject.rfc4514_string()}) expired on "
            f"{issuer.not_valid_after_utc:%Y-%m-%d}, before the pass was signed. Download "
            "the current WWDR certificate of that generation from Apple.",
        )
    if not _trusted(issuer, trust):
        report.warning(
            "chain-untrusted",
            _SIG,
            f"The intermediate ({issuer.subject.rfc4514_string()}) is not Apple's: a "
            "development chain. The pass verifies, but iPhones refuse it; sign with your "
            "Pass Type ID certificate from Apple.",
        )


def _trusted(issuer: x509.Certificate, trust: Sequence[x509.Certificate]) -> bool:
    return any(issuer == root or _issued(issuer, root) for root in (apple_root(), *trust))
