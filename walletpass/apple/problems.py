"""Wallet's error reports per merchant: the messages Wallet posts to /v1/log and the
pushes APNs refuses, matched to the merchant whose pass they are about and grouped by
pattern for the admin's "Wallet problems" page (what each means: walletpass.admin.problems).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.apple.models import AppleLog
from walletpass.certs.models import MerchantCertificate
from walletpass.passes.models import Pass

WALLET = "wallet"
APNS = "apns"

# Wallet's log messages, most specific first: every "Get pass task" message also names its
# web service URL, so the URL pattern must not swallow them. The endpoint is Apple's
# "Log a Message" (WalletPasses); the wording is what devices send.
KNOWN: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (key, re.compile(regex, re.I))
    for key, regex in (
        ("trust-chain", r"trust chain could not be verified|may not match your certificate"),
        ("signing-date", r"must contain a signing date"),
        ("manifest-entry", r"no entry in manifest|manifest .*(hash|mismatch)"),
        ("last-modified", r"last-modified['\"]? header"),
        ("invalid-data", r"invalid data error reading pass"),
        ("not-found", r"could not find pass|(response|status) code:? ?404|returned 404"),
        ("unauthorized", r"(response|status) code:? ?401|unauthori[sz]ed|returned 401"),
        ("authentication-token", r"authenticationToken|authentication token"),
        ("unchanged", r"but the pass was unchanged"),
        ("if-modified-since", r"ignored the ['\"]?if-modified-since"),
        ("last-updated", r"lastUpdated tag .* remained the same"),
        ("malformed", r"response was malformed|could not parse|invalid json"),
        ("server-error", r"(response|status) code:? ?5\d\d|returned 5\d\d"),
        ("web-service-url", r"not https|insecure|https is required|web ?service ?url is invalid"),
    )
)
# APNs's answers (walletpass.apple.apns.classify), by HTTP status and reason.
APNS_REASONS = {
    "BadDeviceToken": "apns-bad-token",
    "DeviceTokenNotForTopic": "apns-topic",
    "TopicDisallowed": "apns-topic",
    "BadTopic": "apns-topic",
    "MissingTopic": "apns-topic",
}

_SERIAL = re.compile(r"serial number '?([A-Za-z0-9._-]+)")
_TYPED_SERIAL = re.compile(r"\b(pass\.[A-Za-z0-9.-]+)/([A-Za-z0-9._-]+)")
_PASS_TYPE = re.compile(r"\b(pass\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)")
_TIMESTAMP = re.compile(r"^\s*\[[^\]]*\]\s*")
_VARIABLE = (
    (re.compile(r"https?://\S+"), "<url>"),
    (re.compile(r"serial number '?[A-Za-z0-9._-]+'?"), "serial number <serial>"),
    (re.compile(r"\bpass\.[A-Za-z0-9.-]+(/[A-Za-z0-9._-]+)?"), "<pass>"),
    (re.compile(r"\([^()]*\d{2}:\d{2}:\d{2}[^()]*\)"), "(<date>)"),
    (re.compile(r"\d+"), "<n>"),
)


def serial_in(message: str) -> str | None:
    """The pass serial a Wallet message names (``serial number X``, ``pass.type/X``)."""
    match = _SERIAL.search(message) or _TYPED_SERIAL.search(message)
    if match is None:
        return None
    # A sentence's full stop is not part of the serial.
    return match.group(match.lastindex or 1).rstrip(".")[:64] or None


def pattern_of(message: str) -> str:
    """A known problem's key, or the message with what varies taken out."""
    for key, regex in KNOWN:
        if regex.search(message):
            return key
    text = _TIMESTAMP.sub("", message)
    for regex, placeholder in _VARIABLE:
        text = regex.sub(placeholder, text)
    return " ".join(text.split())[:200]


def apns_pattern(status: int | None, reason: str | None) -> str:
    if reason in APNS_REASONS:
        return APNS_REASONS[reason]
    if status == 410:
        return "apns-unregistered"
    if status == 403:
        return "apns-certificate"
    if status is None or status == 429 or (status >= 500):
        return "apns-unavailable"
    return "apns-refused"


def record_wallet_logs(session: Session, messages: Iterable[str], remote_addr: str | None) -> int:
    """Store Wallet's messages, each with its serial, pattern and (when the serial is one
    of our passes) merchant: one query for the whole post."""
    rows = [
        AppleLog(
            message=message[:4000],
            serial=serial_in(message),
            pattern=pattern_of(message),
            source=WALLET,
            remote_addr=remote_addr,
        )
        for message in messages
    ]
    serials = {row.serial for row in rows if row.serial}
    if serials:
        found = session.execute(
            select(Pass.serial, Pass.merchant_id)
            .where(Pass.serial.in_(serials))
            .execution_options(all_merchants=True)
        ).all()
        owners = {serial: merchant_id for serial, merchant_id in found}
        for row in rows:
            row.merchant_id = owners.get(row.serial or "")
    _by_pass_type(session, [row for row in rows if row.merchant_id is None])
    session.add_all(rows)
    return len(rows)


def record_apns_errors(
    session: Session,
    merchant_id: int | None,
    topic: str,
    refused: Sequence[tuple[int | None, str | None]],
) -> None:
    """One row per kind of refusal among a batch's pushes (``(status, reason)`` each), with
    how many: a campaign's ten thousand dead tokens are one row, not ten thousand."""
    counts = Counter(refused)
    for (status, reason), count in counts.items():
        session.add(
            AppleLog(
                message=f"APNs {status or 'no answer'} {reason or ''} ({topic})".replace("  ", " "),
                source=APNS,
                pattern=apns_pattern(status, reason),
                merchant_id=merchant_id,
                count=count,
            )
        )


@dataclass(frozen=True)
class ProblemGroup:
    source: str
    pattern: str
    count: int
    first_seen: datetime
    last_seen: datetime
    serials: tuple[str, ...]
    example: str


MAX_GROUPS = 50


def wallet_problems(session: Session, merchant_id: int) -> list[ProblemGroup]:
    """The merchant's problems grouped by pattern, most frequent first."""
    groups = session.execute(
        select(
            AppleLog.source,
            AppleLog.pattern,
            func.sum(AppleLog.count),
            func.min(AppleLog.created_at),
            func.max(AppleLog.created_at),
            func.max(AppleLog.id),
        )
        .where(AppleLog.merchant_id == merchant_id, AppleLog.pattern.is_not(None))
        .group_by(AppleLog.source, AppleLog.pattern)
        .order_by(func.sum(AppleLog.count).desc(), AppleLog.pattern)
        .limit(MAX_GROUPS)
    ).all()
    out = []
    for source, pattern, count, first, last, newest in groups:
        serials = session.scalars(
            select(AppleLog.serial)
            .where(
                AppleLog.merchant_id == merchant_id,
                AppleLog.pattern == pattern,
                AppleLog.serial.is_not(None),
            )
            .group_by(AppleLog.serial)
            .order_by(func.max(AppleLog.id).desc())
            .limit(3)
        ).all()
        example = session.scalar(select(AppleLog.message).where(AppleLog.id == newest)) or ""
        out.append(
            ProblemGroup(
                source, pattern, int(count), first, last, tuple(s for s in serials if s), example
            )
        )
    return out


def _pass_type_in(message: str) -> str | None:
    match = _PASS_TYPE.search(message)
    return match.group(1).rstrip(".") if match else None


def _by_pass_type(session: Session, rows: list[AppleLog]) -> None:
    """A message naming no pass of ours but a pass type that is a merchant's own
    certificate's (a registration for a pass we never issued, a refused download) is
    that merchant's: a pass type belongs to one merchant (walletpass.certs.merchant)."""
    types = {t for row in rows if (t := _pass_type_in(row.message))}
    if not types:
        return
    owners = dict(
        session.execute(
            select(MerchantCertificate.pass_type_id, MerchantCertificate.merchant_id)
            .where(MerchantCertificate.pass_type_id.in_(types))
            .distinct()
            .execution_options(all_merchants=True)
        )
        .tuples()
        .all()
    )
    for row in rows:
        row.merchant_id = owners.get(_pass_type_in(row.message) or "")
