"""Every check, in the order an operator reads them: certificates, chain, dates, APNs, the
public URL, Google."""

from __future__ import annotations

from datetime import datetime

from walletpass.db import utcnow
from walletpass.health.checks import offline_checks
from walletpass.health.findings import Finding
from walletpass.health.probes import apns_topics, check_apns, check_google, check_public_url
from walletpass.runtime import Runtime


def run_checks(
    runtime: Runtime, *, network: bool = True, now: datetime | None = None
) -> list[Finding]:
    """What every check found. With ``network`` false, nothing is called (no APNs dry
    push, no request to the public URL or to Google): the files and settings only.

    The database is read in one short read-only transaction, closed before any call
    goes out, so a slow APNs holds no connection of the pool.
    """
    settings = runtime.settings
    with runtime.transaction(readonly=True) as session:
        items, found = offline_checks(session, settings, now or utcnow())
    if network:
        for item in items:
            for topic in apns_topics(item, settings):
                found.append(check_apns(item, settings, topic))
        found += check_public_url(settings)
    found += check_google(settings, network=network)
    return found
