"""API keys: created once and shown once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from walletpass.db import utcnow
from walletpass.directsql import Direct
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
# Built once: every API call runs it. A Core statement, not an ORM load: this is the one
# query every request pays for, and the caller needs five columns, not a live row. Keys
# are looked up across merchants (the key tells whose it is).
_BY_PREFIX = Direct(
    select(
        _KEYS.c.id,
        _KEYS.c.merchant_id,
        _KEYS.c.scope,
        _KEYS.c.store_id,
        _KEYS.c.name,
        _KEYS.c.key_hash,
        _KEYS.c.revoked_at,
        _KEYS.c.last_used_at,
    ).where(_KEYS.c.prefix == bindparam("prefix"))
)
# Recording a use is best effort: if another request is recording one for this key right
# now, skip it rather than queue behind its transaction (PostgreSQL's SKIP LOCKED; SQLite's
# writers are serialized anyway). NO KEY UPDATE, so the scans' foreign-key checks on the
# key's row do not wait either.
_TOUCH = Direct(
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


def authenticate(
    session: Session, presented: str, *, touch_after: timedelta = timedelta(0)
) -> AuthenticatedKey | None:
    """The live key matching ``presented``, or None.

    :param touch_after: record the use only if the last recorded one is older than this.
    """
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    conn = session.connection()
    row = _BY_PREFIX.one_or_none(conn, {"prefix": parts[1]})
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _digest(parts[2])):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= touch_after:
        _TOUCH.run(conn, {"key_id": row.id, "now": now})
    return AuthenticatedKey(row.id, row.merchant_id, row.scope, row.store_id, row.name)
