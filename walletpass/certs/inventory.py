"""Every signing identity the installation uses, for `walletpass doctor` and the health page.

The installation's certificate (WALLETPASS_CERTS_DIR) signs its own pass type; each
merchant's imported certificate signs the merchant's type. A merchant's replaced or
removed certificate is still in use while passes of its type exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.certs.merchant import identity_from_row
from walletpass.certs.models import MerchantCertificate
from walletpass.config import Settings
from walletpass.passes.models import Pass
from walletpass.passes.signing import CertificateError, SigningIdentity, load_identity
from walletpass.tenancy.models import Merchant


@dataclass(frozen=True)
class IdentityInUse:
    """One signing identity: whose, the identity (or why it cannot be loaded), the pass
    type it signs and how many passes of that type exist."""

    # None for the installation's own certificate.
    merchant: Merchant | None
    identity: SigningIdentity | None
    error: str | None
    pass_type_id: str
    passes: int
    # For a merchant's certificate: whether it signs the merchant's new passes (False: a
    # replaced or removed one, kept for the passes issued under it).
    active: bool = True

    @property
    def owner(self) -> str:
        return self.merchant.slug if self.merchant is not None else "installation"


def identities_in_use(session: Session, settings: Settings) -> list[IdentityInUse]:
    """The installation's identity first, then each merchant certificate that is active or
    still has passes of its type (newest first per type, one per type: the one that signs).

    Loading errors are reported, not raised: a doctor lists every problem at once.
    """
    counts = dict(
        session.execute(
            select(Pass.pass_type_id, func.count())
            .group_by(Pass.pass_type_id)
            .execution_options(all_merchants=True)
        )
        .tuples()
        .all()
    )
    out: list[IdentityInUse] = []
    try:
        identity: SigningIdentity | None = load_identity(
            settings.resolved_certs_dir, settings.secret_key or None
        )
        error = None
    except CertificateError as exc:
        identity, error = None, str(exc)
    own = settings.pass_type_id
    out.append(IdentityInUse(None, identity, error, own, counts.get(own, 0)))
    rows = session.scalars(
        select(MerchantCertificate)
        .order_by(
            MerchantCertificate.pass_type_id,
            MerchantCertificate.active.desc(),
            MerchantCertificate.id.desc(),
        )
        .execution_options(all_merchants=True)
    ).all()
    seen: set[str] = set()
    for row in rows:
        if row.pass_type_id in seen:
            continue  # an older certificate of a type a newer one signs now
        seen.add(row.pass_type_id)
        used = counts.get(row.pass_type_id, 0)
        if not row.active and not used:
            continue
        try:
            identity, error = identity_from_row(row, settings.secret_key), None
        except CertificateError as exc:
            identity, error = None, str(exc)
        merchant = session.get(Merchant, row.merchant_id)
        out.append(
            IdentityInUse(
                merchant,
                identity,
                error,
                row.pass_type_id,
                used,
                row.active,
            )
        )
    return out
