"""Whether a signing chain is Apple's: the certificates an iPhone trusts, shipped in
``walletpass/certs/apple/`` (Apple publishes them; docs/certificates.md has their
fingerprints)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from walletpass.resources import APPLE_CERTS_DIR

APPLE_ROOT_FILE = "AppleRootCA.pem"
WWDR_G4_FILE = "AppleWWDRCAG4.pem"


@functools.cache
def apple_root() -> x509.Certificate:
    return x509.load_pem_x509_certificate((APPLE_CERTS_DIR / APPLE_ROOT_FILE).read_bytes())


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s key signed ``cert`` (a matching name alone proves nothing)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


@dataclass(frozen=True)
class ChainVerdict:
    apple: bool
    # One line for an operator: what this chain is and what a real iPhone does with it.
    text: str


def judge_chain(intermediate: x509.Certificate) -> ChainVerdict:
    """Is the intermediate that signs with the pass certificate one Apple's root issued?"""
    if issued_by(intermediate, apple_root()):
        return ChainVerdict(
            True,
            f"Apple ({intermediate.subject.rfc4514_string()}, issued by Apple Root CA): "
            "iPhones open these passes",
        )
    if intermediate.issuer == intermediate.subject:
        return ChainVerdict(
            False,
            "development (a local CA, as `walletpass certs dev` makes): passes verify with "
            "openssl but real iPhones refuse them; import your Pass Type ID certificate with "
            "`walletpass certs import --p12 FILE`",
        )
    return ChainVerdict(
        False,
        f"not Apple's: {intermediate.subject.rfc4514_string()} was not issued by Apple Root "
        "CA, so real iPhones refuse these passes",
    )
