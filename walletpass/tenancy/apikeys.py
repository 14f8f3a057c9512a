"""API keys: created once and shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.tenancy.models import ApiKey, Scope

PREFIX = "wp"


def _digest(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough (no dictionary to guard
    # against, unlike passwords) and keeps per-request authentication cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session,
    *,
    merchant_id: int,
    scope: str,
    name: str = "",
    store_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key. Returns the row and the plaintext key, which is never stored."""
    if scope not in {s.value for s in Scope}:
        raise ValueError(
            f"unknown scope {scope!r}; use one of: {', '.join(s.value for s in Scope)}"
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        merchant_id=merchant_id,
        prefix=prefix,
        key_hash=_digest(secret),
        name=name,
        scope=scope,
        store_id=store_id,
    )
    session.add(row)
    session.flush()
    return row, f"{PREFIX}_{prefix}_{secret}"


# Built once: every API call runs it. Keys are looked up across merchants (the key tells
# whose it is).
_BY_PREFIX = (
    select(ApiKey).where(ApiKey.prefix == bindparam("prefix")).execution_options(all_merchants=True)
)


def authenticate(
    session: Session, presented: str, *, touch_after: timedelta = timedelta(0)
) -> ApiKey | None:
    """The live key matching ``presented``, or None.

    :param touch_after: record the use only if the last recorded one is older than this.
    """
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    row = session.scalars(_BY_PREFIX, {"prefix": parts[1]}).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _digest(parts[2])):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= touch_after:
        row.last_used_at = now
    return row
