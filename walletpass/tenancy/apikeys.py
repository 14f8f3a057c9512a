"""API keys: created once and shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.tenancy.models import ApiKey, Scope
from walletpass.ttlcache import TtlCache

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


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    """The key a request presented, as checked: who calls, for which merchant, with what
    scope, from which store. A value, not a row: nothing a handler does to it is saved."""

    id: int
    merchant_id: int
    scope: str
    store_id: int | None
    name: str


_KEYS = ApiKey.__table__
# Built once, so its compiled form is cached: every API call whose key is not cached runs
# it. A Core statement, not an ORM load: the caller needs a few columns, not a live row.
# Keys are looked up across merchants (the key tells whose it is).
_BY_PREFIX = select(
    _KEYS.c.id,
    _KEYS.c.merchant_id,
    _KEYS.c.scope,
    _KEYS.c.store_id,
    _KEYS.c.name,
    _KEYS.c.key_hash,
    _KEYS.c.revoked_at,
    _KEYS.c.last_used_at,
).where(_KEYS.c.prefix == bindparam("prefix"))
# Recording a use is best effort: if another request is recording one for this key right
# now, skip it rather than queue behind its transaction (PostgreSQL's SKIP LOCKED; SQLite's
# writers are serialized anyway). NO KEY UPDATE, so the scans' foreign-key checks on the
# key's row do not wait either.
_TOUCH = (
    update(_KEYS)
    .where(
        _KEYS.c.id.in_(
            select(_KEYS.c.id)
            .where(_KEYS.c.id == bindparam("key_id"))
            .with_for_update(skip_locked=True, key_share=True)
        )
    )
    .values(last_used_at=bindparam("now"))
)


@dataclass(slots=True)
class _Verified:
    key: AuthenticatedKey
    key_hash: str
    last_used_at: datetime | None


# Keys this process read recently, so that a busy till does not pay a database round trip
# per request for the same row (about 5% of a scan's CPU). Only the revocation can change
# on a key's row (merchant, scope, store and hash are set once), so what a cached entry
# can get wrong is bounded by the cache's seconds: a key revoked in another process is
# refused here at the latest that long after. :func:`revoke` forgets the key in its own
# process at once. Unknown prefixes are never cached: a guess costs a query, as before.
KeyCache = TtlCache[_Verified]


def authenticate(
    session: Session,
    presented: str,
    *,
    touch_after: timedelta = timedelta(0),
    cache: KeyCache | None = None,
) -> AuthenticatedKey | None:
    """The live key matching ``presented``, or None.

    :param touch_after: record the use only if the last recorded one is older than this.
    :param cache: where this process keeps keys it read recently (see :class:`KeyCache`).
    """
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    prefix = parts[1]
    entry = cache.get(prefix) if cache is not None else None
    if entry is None:
        row = session.connection().execute(_BY_PREFIX, {"prefix": prefix}).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        key = AuthenticatedKey(row.id, row.merchant_id, row.scope, row.store_id, row.name)
        # Cached before the secret is checked: the row is the key's whoever presents it,
        # and a wrong secret is refused against the cached hash all the same.
        entry = _Verified(key, row.key_hash, row.last_used_at)
        if cache is not None:
            cache.put(prefix, entry)
    if not hmac.compare_digest(entry.key_hash, _digest(parts[2])):
        return None
    now = utcnow()
    if entry.last_used_at is None or now - entry.last_used_at >= touch_after:
        session.connection().execute(_TOUCH, {"key_id": entry.key.id, "now": now})
        # Best effort, as the update is: each process records a use once per
        # ``touch_after`` at most.
        entry.last_used_at = now
    return entry.key


def revoke(session: Session, key: ApiKey, cache: KeyCache | None = None) -> None:
    """Revoke ``key`` (once: a second revocation keeps the first time), and forget it in
    this process's cache so that it is refused here from now on."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    if cache is not None:
        prefix = key.prefix
        cache.forget(prefix)
        # Again once it is committed: a request of this process may read the row, still
        # live, between now and then.
        event.listen(session, "after_commit", lambda _s: cache.forget(prefix), once=True)
