"""A merchant's own Pass Type ID certificate: import, remove, and which identity signs a pass.

Apple keys a pass by pass type identifier + serial number, and a device registers for
updates under that pass type; neither can change for a pass in a wallet. So:

* new passes of a merchant with an active certificate get its pass type (and team);
* a pass keeps the type it was issued with, and is signed (and its pushes sent) with the
  certificate of that type for as long as it lives: the installation's for a pass issued
  before the merchant imported one, the merchant's (newest of that type) otherwise;
* replacing or removing a merchant's certificate makes the row inactive, not gone, so
  passes issued under it still update; reissuing a pass moves it to the current type.

No Flask here: the CLI, the API and the admin call these within runtime.transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletpass.certs.dev import make_dev_certificates
from walletpass.certs.models import MerchantCertificate
from walletpass.certs.p12 import CheckedP12, check_p12
from walletpass.config import Settings
from walletpass.db import rowcount, utcnow
from walletpass.passes.models import Pass
from walletpass.passes.signing import (
    CertificateError,
    SigningIdentity,
    cert_fingerprint,
    load_identity,
)
from walletpass.security import SealError, seal, unseal
from walletpass.tenancy.models import Merchant

_PEM = serialization.Encoding.PEM


def import_p12(
    session: Session,
    settings: Settings,
    merchant_id: int,
    data: bytes,
    password: bytes | None,
    *,
    name: str = "the .p12",
    wwdr_candidates: list[Path] | None = None,
    now: datetime | None = None,
) -> MerchantCertificate:
    """Check a .p12 (every check of ``walletpass certs import``) and make it the
    merchant's active certificate. On any refusal nothing is written.

    :raise CertificateError: naming the reason.
    """
    checked = check_p12(data, name, password, wwdr_candidates=wwdr_candidates, now=now)
    return _store(session, settings, merchant_id, checked)


def install_dev_chain(
    session: Session,
    settings: Settings,
    merchant_id: int,
    pass_type_id: str,
    team_id: str,
    organization: str,
) -> tuple[MerchantCertificate, x509.Certificate]:
    """A development chain of the merchant's own (a CA of its own, so its passes verify
    against that CA only), made its active certificate: (the row, the CA certificate to
    verify its passes with). Real iPhones refuse such passes.

    :raise CertificateError: as :func:`import_p12`.
    """
    ca_cert, pass_cert, pass_key = make_dev_certificates(pass_type_id, team_id, organization)
    checked = CheckedP12(pass_key, pass_cert, ca_cert, pass_type_id, team_id)
    return _store(session, settings, merchant_id, checked), ca_cert


def _store(
    session: Session, settings: Settings, merchant_id: int, checked: CheckedP12
) -> MerchantCertificate:
    if not settings.secret_key:
        raise CertificateError(
            "WALLETPASS_SECRET_KEY is not set; it is needed to seal the imported private key"
        )
    if checked.pass_type_id == settings.pass_type_id:
        raise CertificateError(
            f"{checked.pass_type_id} is the installation's own pass type "
            "(WALLETPASS_PASS_TYPE_ID); a merchant's certificate needs a pass type of its own"
        )
    # Two imports for one merchant at once (two tabs, a retried API call): the second
    # waits here for the first to commit, then replaces it, instead of meeting the
    # one-active-certificate index as a 500. SQLite's writers are one at a time already.
    session.execute(select(Merchant.id).where(Merchant.id == merchant_id).with_for_update())
    taken = session.scalars(
        select(MerchantCertificate.merchant_id)
        .where(
            MerchantCertificate.pass_type_id == checked.pass_type_id,
            MerchantCertificate.merchant_id != merchant_id,
        )
        .limit(1)
        .execution_options(all_merchants=True)
    ).first()
    if taken is not None:
        # A pass type belongs to one merchant: the web service and the pushes find a
        # pass's certificate by its type.
        raise CertificateError(
            f"pass type {checked.pass_type_id} is already used by another merchant"
        )
    _deactivate(session, merchant_id)
    # A renewal (same pass type): the signatures kept on its passes were made with the
    # certificate being replaced; the next fetch signs again with the new one.
    session.execute(
        update(Pass)
        .where(Pass.merchant_id == merchant_id, Pass.pass_type_id == checked.pass_type_id)
        .values(signed_version=None)
        .execution_options(synchronize_session=False)
    )
    row = MerchantCertificate(
        merchant_id=merchant_id,
        pass_type_id=checked.pass_type_id,
        team_id=checked.team_id,
        subject=checked.cert.subject.rfc4514_string(),
        cert_pem=checked.cert.public_bytes(_PEM).decode("ascii"),
        intermediate_pem=checked.wwdr.public_bytes(_PEM).decode("ascii"),
        sealed_key=seal(settings.secret_key, checked.key_pem),
        not_after=checked.cert.not_valid_after_utc,
        fingerprint=cert_fingerprint(checked.cert),
        active=True,
    )
    session.add(row)
    session.flush()
    return row


def _deactivate(session: Session, merchant_id: int) -> int:
    result = session.execute(
        update(MerchantCertificate)
        .where(MerchantCertificate.merchant_id == merchant_id, MerchantCertificate.active)
        .values(active=False, removed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def remove(session: Session, merchant_id: int) -> bool:
    """New passes go back to the installation's certificate; whether one was active.

    The row stays (inactive) so the passes issued under its type still update.
    """
    return _deactivate(session, merchant_id) > 0


def active_certificate(session: Session, merchant_id: int) -> MerchantCertificate | None:
    return session.scalars(
        select(MerchantCertificate)
        .where(MerchantCertificate.merchant_id == merchant_id, MerchantCertificate.active)
        .execution_options(all_merchants=True)
    ).one_or_none()


def pass_type_for_new_pass(session: Session, settings: Settings, merchant_id: int) -> str:
    """The pass type identifier a new pass of this merchant is issued with."""
    active = session.scalars(
        select(MerchantCertificate.pass_type_id)
        .where(MerchantCertificate.merchant_id == merchant_id, MerchantCertificate.active)
        .execution_options(all_merchants=True)
    ).one_or_none()
    return active or settings.pass_type_id


@dataclass(frozen=True)
class Signer:
    """What signs one pass type: its team (for pass.json) and, on demand, the identity."""

    pass_type_id: str
    team_id: str | None
    # None: the installation's certificate folder.
    row_id: int | None
    fingerprint: str | None

    def identity(self, session: Session | None, settings: Settings) -> SigningIdentity:
        """:raise CertificateError: it cannot be loaded."""
        if self.row_id is None:
            identity = load_identity(settings.resolved_certs_dir, settings.secret_key or None)
            if identity.pass_type_id != self.pass_type_id:
                raise CertificateError(
                    f"no certificate signs pass type {self.pass_type_id}: the installation's "
                    f"is for {identity.pass_type_id}"
                )
            return identity
        assert self.fingerprint is not None
        assert session is not None
        return _identity_for_row(session, settings, self.row_id, self.fingerprint)


def installation_signer(settings: Settings, pass_type_id: str | None = None) -> Signer:
    """The installation's certificate folder signs its own pass type."""
    return Signer(pass_type_id or settings.pass_type_id, settings.team_id, None, None)


def signer_for(
    session: Session, settings: Settings, pass_type_id: str, merchant_id: int | None = None
) -> Signer:
    """Who signs passes of ``pass_type_id`` (of ``merchant_id`` when given): the
    installation for its own type, else the newest certificate of that type.

    :raise CertificateError: no certificate signs this type (for this merchant).
    """
    if pass_type_id == settings.pass_type_id:
        return installation_signer(settings)
    query = select(
        MerchantCertificate.id, MerchantCertificate.team_id, MerchantCertificate.fingerprint
    ).where(MerchantCertificate.pass_type_id == pass_type_id)
    if merchant_id is not None:
        query = query.where(MerchantCertificate.merchant_id == merchant_id)
    found = session.execute(
        query.order_by(MerchantCertificate.active.desc(), MerchantCertificate.id.desc())
        .limit(1)
        .execution_options(all_merchants=True)
    ).first()
    if found is None:
        raise CertificateError(
            f"no certificate signs pass type {pass_type_id}: neither the installation's "
            f"(WALLETPASS_PASS_TYPE_ID is {settings.pass_type_id}) nor a merchant's"
        )
    return Signer(pass_type_id, found.team_id, found.id, found.fingerprint)


# Parsed identities by (row id, fingerprint, secret key): a replaced certificate is a new
# row (and fingerprint), so it is picked up at once; a row is parsed and unsealed once
# per process, like load_identity's files.
_cache: dict[tuple[int, str, str], SigningIdentity] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 256


def _identity_for_row(
    session: Session, settings: Settings, row_id: int, fingerprint: str
) -> SigningIdentity:
    key = (row_id, fingerprint, settings.secret_key)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    row = session.scalars(
        select(MerchantCertificate)
        .where(MerchantCertificate.id == row_id)
        .execution_options(all_merchants=True)
    ).one()
    identity = identity_from_row(row, settings.secret_key)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = identity
    return identity


def identity_from_row(row: MerchantCertificate, secret_key: str) -> SigningIdentity:
    """:raise CertificateError: the key cannot be unsealed (another secret key) or the
    stored parts do not fit together."""
    try:
        key_pem = unseal(secret_key, row.sealed_key)
    except SealError as exc:
        raise CertificateError(
            f"cannot open the private key of {row.pass_type_id}'s certificate: {exc}"
        ) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(row.cert_pem.encode("ascii"))
        intermediate = x509.load_pem_x509_certificate(row.intermediate_pem.encode("ascii"))
    except (ValueError, TypeError) as exc:
        raise CertificateError(
            f"{row.pass_type_id}'s stored certificate is unreadable: {exc}"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{row.pass_type_id}'s stored key is not an RSA or EC key")
    return SigningIdentity(cert=cert, key=key, intermediate=intermediate)


def clear_cache() -> None:
    """Forget every parsed merchant identity (tests; after rotating the secret key)."""
    with _cache_lock:
        _cache.clear()
