"""The checks that need no network: the signing certificates, their chain and their dates.

Each check returns :class:`~walletpass.health.findings.Finding` rows. What a real iPhone
verifies is the model: the pass certificate's Pass Type ID (UID) and team (OU) must be the
``passTypeIdentifier`` and ``teamIdentifier`` of every pass it signs, the intermediate in
the signature must be the Apple WWDR certificate that issued it, and nothing in the chain
may have expired (docs/health.md names Apple's pages for each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.certs.inventory import identities_in_use
from walletpass.certs.trust import apple_root, issued_by, judge_chain
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.health.findings import Finding, Status
from walletpass.i18n.catalogues import N_
from walletpass.passes.models import Pass
from walletpass.passes.signing import SigningIdentity

# A certificate this close to its end is a warning (the admin's banner, the gauges' flag).
WARN_DAYS = 30


@dataclass(frozen=True)
class IdentityInUse:
    """A signing identity the installation uses, and what it signs.

    ``identity`` is None when it cannot be loaded; ``error`` then says why.
    """

    merchant: str | None  # None: the installation's own (WALLETPASS_CERTS_DIR)
    identity: SigningIdentity | None
    error: str | None
    # The passTypeIdentifier of passes already issued that this identity signs.
    pass_type_ids: frozenset[str]
    # Whose own certificate it is (its owners get the expiry emails); None for the
    # installation's.
    merchant_id: int | None = None

    @property
    def label(self) -> str:
        owner = self.merchant or "installation"
        if self.identity is not None:
            return f"{owner}: {self.identity.pass_type_id}"
        return owner


def _identities(session: Session, settings: Settings) -> list[IdentityInUse]:
    """Every signing identity in use (walletpass.certs.inventory), each with the pass types
    of the issued passes it signs: a merchant's certificate its own type, the
    installation's every issued type no merchant certificate signs."""
    found = identities_in_use(session, settings)
    issued = frozenset(
        session.scalars(select(Pass.pass_type_id).distinct().execution_options(all_merchants=True))
    )
    merchants_types = {item.pass_type_id for item in found if item.merchant is not None}
    out = []
    for item in found:
        if item.merchant is None:
            out.append(IdentityInUse(None, item.identity, item.error, issued - merchants_types))
        else:
            signs = frozenset({item.pass_type_id}) if item.passes else frozenset()
            out.append(
                IdentityInUse(
                    item.merchant.slug, item.identity, item.error, signs, item.merchant.id
                )
            )
    return out


def identities(session: Session, settings: Settings) -> list[IdentityInUse]:
    return _identities(session, settings)


# ------------------------------------------------------------------ dates


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, rounded up: 9 days and 23 hours is "10 days"."""
    return math.ceil((not_after - now) / timedelta(days=1))


def fmt_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# ------------------------------------------------------------------ the certificate


def check_certificate(item: IdentityInUse, settings: Settings) -> list[Finding]:
    """Present, key matching, and its Pass Type ID and team the ones passes carry."""
    if item.identity is None:
        return [
            Finding(
                "certificate",
                N_("Signing certificate"),
                Status.ERROR,
                N_("The pass signing certificate cannot be used: %(reason)s"),
                {"reason": item.error or ""},
                subject=item.label,
            )
        ]
    identity = item.identity
    facts = {
        "subject": identity.cert.subject.rfc4514_string(),
        "pass_type_id": identity.pass_type_id,
        "team_id": identity.team_id or "",
        "configured_pass_type_id": settings.pass_type_id,
        "configured_team_id": settings.team_id,
        "issued_pass_type_ids": ", ".join(sorted(item.pass_type_ids)) or "-",
        "sha256": fingerprint(identity.cert),
    }
    found = [
        Finding(
            "certificate",
            N_("Signing certificate"),
            Status.OK,
            N_("The certificate and its private key belong together."),
            facts=facts,
            subject=item.label,
        )
    ]
    found.append(_pass_type(item, identity, settings, facts))
    team = identity.team_id
    if item.merchant is None and team != settings.team_id:
        found.append(
            Finding(
                "team",
                N_("Team ID"),
                Status.ERROR,
                N_(
                    "The certificate is for team %(cert)s but WALLETPASS_TEAM_ID is "
                    "%(configured)s: passes carry the configured team, and Wallet refuses a "
                    "pass whose teamIdentifier is not its certificate's. Set "
                    "WALLETPASS_TEAM_ID to %(cert)s, or import the certificate of team "
                    "%(configured)s."
                ),
                {"cert": team or "-", "configured": settings.team_id},
                facts,
                item.label,
            )
        )
    else:
        found.append(
            Finding(
                "team",
                N_("Team ID"),
                Status.OK,
                N_("The certificate's team %(team)s is the one passes carry."),
                {"team": team or "-"},
                facts,
                item.label,
            )
        )
    return found


def _pass_type(
    item: IdentityInUse, identity: SigningIdentity, settings: Settings, facts: dict[str, str]
) -> Finding:
    cert_type = identity.pass_type_id
    if item.merchant is None and cert_type != settings.pass_type_id:
        return Finding(
            "pass_type",
            N_("Pass Type ID"),
            Status.ERROR,
            N_(
                "The certificate is for pass type %(cert)s but WALLETPASS_PASS_TYPE_ID is "
                "%(configured)s: new passes carry the configured type, and Wallet refuses a "
                "pass whose passTypeIdentifier is not its certificate's UID. Set "
                "WALLETPASS_PASS_TYPE_ID to %(cert)s, or import the certificate of "
                "%(configured)s (walletpass certs import)."
            ),
            {"cert": cert_type, "configured": settings.pass_type_id},
            facts,
            item.label,
        )
    others = sorted(item.pass_type_ids - {cert_type})
    if others:
        return Finding(
            "pass_type",
            N_("Pass Type ID"),
            Status.ERROR,
            N_(
                "Passes already issued carry pass type %(issued)s, but the certificate that "
                "signs them is for %(cert)s: Wallet refuses their updates and APNs their "
                "pushes. Import the certificate of %(issued)s again."
            ),
            {"issued": ", ".join(others), "cert": cert_type},
            facts,
            item.label,
        )
    return Finding(
        "pass_type",
        N_("Pass Type ID"),
        Status.OK,
        N_("The certificate's Pass Type ID %(cert)s is the one configured and issued."),
        {"cert": cert_type},
        facts,
        item.label,
    )


# ------------------------------------------------------------------ the chain


def wwdr_generation(name: x509.Name) -> str | None:
    """ "G4", "G1"... of an Apple WWDR name (the first generation's OU is not "G1")."""
    ou = name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    value = str(ou[0].value) if ou else ""
    if value.upper().startswith("G") and value[1:].isdigit():
        return value.upper()
    if "Apple Worldwide Developer Relations" in name.rfc4514_string():
        return "G1"
    return None


def check_chain(item: IdentityInUse, settings: Settings, now: datetime) -> list[Finding]:
    """The intermediate issued the certificate, is Apple's WWDR (or a dev CA), and is valid."""
    identity = item.identity
    if identity is None:
        return []
    cert, intermediate = identity.cert, identity.intermediate
    facts = {
        "certificate_issuer": cert.issuer.rfc4514_string(),
        "intermediate": intermediate.subject.rfc4514_string(),
        "intermediate_issuer": intermediate.issuer.rfc4514_string(),
        "intermediate_not_after": fmt_date(intermediate.not_valid_after_utc),
    }
    title = N_("Certificate chain")
    if not issued_by(cert, intermediate):
        return [
            Finding(
                "chain",
                title,
                Status.ERROR,
                N_(
                    "The intermediate certificate did not sign the pass certificate (its "
                    "name matches, its key does not): Wallet refuses these passes. Import "
                    "the certificate again with `walletpass certs import`, which picks the "
                    "WWDR intermediate that issued it."
                ),
                facts=facts,
                subject=item.label,
            )
        ]
    verdict = judge_chain(intermediate)
    generation = wwdr_generation(intermediate.subject) or "-"
    facts["generation"] = generation
    if verdict.apple:
        found = Finding(
            "chain",
            title,
            Status.OK,
            N_(
                "Apple WWDR %(generation)s issued the certificate, and Apple Root CA the "
                "WWDR: iPhones trust this chain."
            ),
            {"generation": generation},
            facts,
            item.label,
        )
    elif intermediate.issuer == intermediate.subject:
        https = settings.public_url.startswith("https://")
        found = Finding(
            "chain",
            title,
            Status.WARNING if https else Status.OK,
            N_(
                "A development chain signs the passes: real iPhones refuse them. Import "
                "your Pass Type ID certificate with `walletpass certs import --p12 FILE`."
            )
            if https
            else N_(
                "A development chain signs the passes: fine for local tests; real iPhones "
                "refuse them."
            ),
            facts=facts,
            subject=item.label,
        )
    else:
        found = Finding(
            "chain",
            title,
            Status.ERROR,
            N_(
                "The intermediate %(intermediate)s was not issued by Apple Root CA: real "
                "iPhones refuse these passes. Import the certificate again with Apple's WWDR "
                "intermediate (walletpass certs import)."
            ),
            {"intermediate": intermediate.subject.rfc4514_string()},
            facts,
            item.label,
        )
    return [found, *_chain_dates(item, intermediate, verdict.apple, now)]


def _chain_dates(
    item: IdentityInUse, intermediate: x509.Certificate, apple: bool, now: datetime
) -> list[Finding]:
    found = [
        expiry_finding("expiry.wwdr", intermediate.not_valid_after_utc, now, item.label),
    ]
    if apple:
        found.append(
            expiry_finding("expiry.root", apple_root().not_valid_after_utc, now, item.label)
        )
    return found


# ------------------------------------------------------------------ expiry

_EXPIRY_TITLES = {
    "expiry.pass": N_("Pass certificate expiry"),
    "expiry.wwdr": N_("Intermediate (WWDR) expiry"),
    "expiry.root": N_("Apple root expiry"),
}


def expiry_finding(check: str, not_after: datetime, now: datetime, subject: str) -> Finding:
    """Expired: an error; within :data:`WARN_DAYS`: a warning with the date and days left."""
    title = _EXPIRY_TITLES[check]
    days = days_left(not_after, now)
    params = {"date": fmt_date(not_after), "days": str(days)}
    facts = {"not_after": fmt_date(not_after), "days_left": str(days)}
    if not_after <= now:
        return Finding(
            check,
            title,
            Status.ERROR,
            N_(
                "Expired on %(date)s: Wallet refuses passes signed with it and APNs its "
                "pushes. Renew it in the Apple Developer portal and import it again."
            ),
            params,
            facts,
            subject,
        )
    if days <= WARN_DAYS:
        return Finding(
            check,
            title,
            Status.WARNING,
            N_(
                "Expires on %(date)s, in %(days)s days. Renew it in the Apple Developer "
                "portal and import it (walletpass certs import) before then: after that date "
                "Wallet refuses new and updated passes and APNs refuses the pushes."
            ),
            params,
            facts,
            subject,
        )
    return Finding(
        check,
        title,
        Status.OK,
        N_("Valid until %(date)s (%(days)s days)."),
        params,
        facts,
        subject,
    )


def check_expiry(item: IdentityInUse, now: datetime) -> list[Finding]:
    """The pass certificate's dates; it is also the APNs client certificate (pushes
    authenticate with the certificate that signed the pass)."""
    if item.identity is None:
        return []
    return [expiry_finding("expiry.pass", item.identity.not_after, now, item.label)]


def offline_checks(
    session: Session, settings: Settings, now: datetime | None = None
) -> tuple[list[IdentityInUse], list[Finding]]:
    """The identities in use and what the certificate, chain and expiry checks found."""
    now = now or utcnow()
    found: list[Finding] = []
    items = identities(session, settings)
    for item in items:
        found += check_certificate(item, settings)
        found += check_chain(item, settings, now)
        found += check_expiry(item, now)
    return items, found
