"""The webhook signature, shared by inbound and outbound webhooks.

``Walletpass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``.
The timestamp is inside the signed text, so an old request cannot be replayed with a
fresh ``t``; the tolerance bounds how long a captured request stays usable. During a
secret rotation a sender may put several ``v1`` values in one header (one per secret);
a request is authentic when any of them matches any secret the receiver holds.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from walletpass.security import constant_time_equals

SIGNATURE_HEADER = "Walletpass-Signature"
EVENT_ID_HEADER = "Walletpass-Event-Id"
EVENT_TYPE_HEADER = "Walletpass-Event-Type"
TOLERANCE_SECONDS = 300
# A header is tiny; refusing long ones bounds the work an unauthenticated caller causes.
_MAX_HEADER_LEN = 2048
_MAX_SIGNATURES = 8


class SignatureError(ValueError):
    """The signature header is missing, malformed, too old, or matches no secret."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def compute(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def header_value(
    secrets: str | bytes | Iterable[str | bytes], body: bytes, timestamp: int | None = None
) -> str:
    """A complete header value; with several secrets, one ``v1`` per secret."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    return ",".join([f"t={t}", *(f"v1={compute(k, t, body)}" for k in keys)])


def parse(header: str | None) -> tuple[int, list[str]]:
    """Split a header into its timestamp and its ``v1`` signatures.

    Unknown schemes (a future ``v2``) are skipped, so senders can add one without
    breaking receivers that only know ``v1``.

    :raise SignatureError: no header, no timestamp, or no ``v1`` value.
    """
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if len(header) > _MAX_HEADER_LEN:
        raise SignatureError(f"{SIGNATURE_HEADER} header is too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.strip().lower())
    if timestamp is None:
        raise SignatureError(f"{SIGNATURE_HEADER} has no t=<unix seconds>")
    if not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} has no v1=<hex signature>")
    return timestamp, signatures[:_MAX_SIGNATURES]


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[str | bytes],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Check ``header`` against the raw ``body`` with any of ``secrets``.

    Call this on the raw bytes, before parsing: a parser must never see unauthenticated
    input, and re-serialised JSON would not hash the same.

    :return: the signed timestamp.
    :raise SignatureError: when the request is not authentic or is outside the tolerance.
    """
    timestamp, signatures = parse(header)
    current = time.time() if now is None else now
    # Both directions: a timestamp far in the future would otherwise stay valid for longer.
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"timestamp {timestamp} is outside the {tolerance}s tolerance "
            "(check the sender's clock, and sign each attempt afresh)"
        )
    matched = False
    for secret in secrets:
        expected = compute(secret, timestamp, body)
        for candidate in signatures:
            # No early exit: the time taken does not depend on which value matched.
            matched |= constant_time_equals(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches the secret")
    return timestamp
