"""When each certificate in use runs out: for /metrics, the dashboard's banner and the
warning emails. Cached a minute per process: /metrics is scraped every few seconds and
the dates change only when a certificate is replaced."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.health.checks import WARN_DAYS, days_left, fingerprint, identities
from walletpass.runtime import Runtime
from walletpass.ttlcache import TtlCache

CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class CertificateDate:
    """One certificate's end. ``kind``: "pass" (signs passes), "apns" (authenticates
    pushes: today the same certificate as "pass") or "wwdr" (the intermediate)."""

    kind: str
    pass_type_id: str
    subject: str
    not_after: datetime
    fingerprint: str
    # The merchant whose own certificate it is; None for the installation's.
    merchant_id: int | None = None

    def days_left(self, now: datetime) -> int:
        return days_left(self.not_after, now)

    def expiring(self, now: datetime) -> bool:
        return self.days_left(now) <= WARN_DAYS


def certificate_dates(session: Session, settings: Settings) -> list[CertificateDate]:
    dates = []
    for item in identities(session, settings):
        identity = item.identity
        if identity is None:
            continue
        cert, intermediate = identity.cert, identity.intermediate
        for kind, c in (("pass", cert), ("apns", cert), ("wwdr", intermediate)):
            dates.append(
                CertificateDate(
                    kind=kind,
                    pass_type_id=identity.pass_type_id,
                    subject=c.subject.rfc4514_string(),
                    not_after=c.not_valid_after_utc,
                    fingerprint=fingerprint(c),
                    merchant_id=item.merchant_id,
                )
            )
    return dates


_cache: TtlCache[list[CertificateDate]] = TtlCache(CACHE_SECONDS)
_lock = threading.Lock()


def cached_dates(runtime: Runtime) -> list[CertificateDate]:
    """:func:`certificate_dates`, read at most once a minute per installation."""
    settings = runtime.settings
    key = f"{settings.resolved_certs_dir}|{settings.resolved_database_url}"
    with _lock:
        found = _cache.get(key)
    if found is None:
        with runtime.transaction(readonly=True) as session:
            found = certificate_dates(session, settings)
        with _lock:
            _cache.put(key, found)
    return found


def forget_cached() -> None:
    """Read the certificates again on the next call (tests; after an import)."""
    global _cache
    with _lock:
        _cache = TtlCache(CACHE_SECONDS)
