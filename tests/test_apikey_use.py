"""An API key's use: its last use recorded at most once per resolution window, and the
process's cache of keys it has read (KeyCache), whose one possible error is a revocation
made in another process, for at most its TTL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import factories

from walletpass.db import utcnow
from walletpass.tenancy.apikeys import KeyCache, authenticate, create_api_key, revoke
from walletpass.tenancy.models import ApiKey


def test_last_use_is_recorded_once_per_window(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        row, key = create_api_key(s, merchant_id=merchant.id, scope="till")
        key_id = row.id
    with runtime.transaction() as s:
        assert s.get(ApiKey, key_id).last_used_at is None
        caller = authenticate(s, key, touch_after=timedelta(minutes=1))
        assert caller is not None
        assert caller.id == key_id
    with runtime.transaction() as s:
        first = s.get(ApiKey, key_id).last_used_at
        assert first is not None
        assert authenticate(s, key, touch_after=timedelta(minutes=1)) is not None
    with runtime.transaction() as s:
        assert s.get(ApiKey, key_id).last_used_at == first  # within the window: untouched
        assert authenticate(s, key, touch_after=timedelta(0)) is not None
    with runtime.transaction() as s:
        assert s.get(ApiKey, key_id).last_used_at > first
        assert authenticate(s, key[:-1] + ("A" if key[-1] != "A" else "B")) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _new_key(runtime, scope: str = "till"):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        row, key = create_api_key(s, merchant_id=merchant.id, scope=scope)
        return row.id, key


def _revoke_elsewhere(runtime, key_id: int) -> None:  # type: ignore[no-untyped-def]
    # As another process would: the row changes, this process's cache is not told.
    with runtime.transaction() as s:
        s.get(ApiKey, key_id).revoked_at = utcnow()


def test_a_key_revoked_in_another_process_is_refused_once_its_entry_expires(runtime):  # type: ignore[no-untyped-def]
    key_id, key = _new_key(runtime)
    clock = Clock()
    cache = KeyCache(2, clock)
    with runtime.transaction() as s:
        assert authenticate(s, key, cache=cache).id == key_id
    _revoke_elsewhere(runtime, key_id)
    clock.now += 1.9
    with runtime.transaction() as s:
        # Within the TTL the row is not read again: this is the lag the setting bounds.
        assert authenticate(s, key, cache=cache).id == key_id
        # A wrong secret is refused against the cached hash.
        assert authenticate(s, key[:-1] + ("A" if key[-1] != "A" else "B"), cache=cache) is None
    clock.now += 0.1
    with runtime.transaction() as s:
        assert authenticate(s, key, cache=cache) is None


def test_a_key_revoked_in_this_process_is_refused_at_once(runtime):  # type: ignore[no-untyped-def]
    key_id, key = _new_key(runtime)
    cache = KeyCache(60, Clock())
    with runtime.transaction() as s:
        assert authenticate(s, key, cache=cache) is not None
    with runtime.transaction() as s:
        revoke(s, s.get(ApiKey, key_id), cache)
        # Read again before the revocation commits: still live, and cached anew...
        with runtime.transaction(readonly=True) as other:
            hour = timedelta(hours=1)  # a read only: its use was recorded just now
            assert authenticate(other, key, touch_after=hour, cache=cache) is not None
    # ...and forgotten again when the revocation commits.
    with runtime.transaction() as s:
        assert authenticate(s, key, cache=cache) is None
        assert s.get(ApiKey, key_id).revoked_at is not None


def test_without_a_cache_lifetime_every_request_reads_the_key(runtime):  # type: ignore[no-untyped-def]
    key_id, key = _new_key(runtime)
    cache = KeyCache(0, Clock())
    with runtime.transaction() as s:
        assert authenticate(s, key, cache=cache) is not None
    _revoke_elsewhere(runtime, key_id)
    with runtime.transaction() as s:
        assert authenticate(s, key, cache=cache) is None


def test_an_unknown_prefix_is_not_remembered(runtime):  # type: ignore[no-untyped-def]
    """A key that did not exist when first presented is found once it does."""
    cache = KeyCache(60, Clock())
    with runtime.transaction() as s:
        assert authenticate(s, "wp_0123456789ab_secret", cache=cache) is None
        merchant = factories.merchant(s)
        s.add(
            ApiKey(
                merchant_id=merchant.id,
                prefix="0123456789ab",
                key_hash=hashlib.sha256(b"secret").hexdigest(),
                name="",
                scope="till",
            )
        )
    with runtime.transaction() as s:
        assert authenticate(s, "wp_0123456789ab_secret", cache=cache) is not None


def test_the_last_use_is_still_recorded_through_the_cache(runtime):  # type: ignore[no-untyped-def]
    key_id, key = _new_key(runtime)
    cache = KeyCache(60, Clock())
    for _ in range(2):
        with runtime.transaction() as s:
            assert authenticate(s, key, touch_after=timedelta(minutes=1), cache=cache)
    with runtime.transaction() as s:
        first = s.get(ApiKey, key_id).last_used_at
        assert first is not None
        assert authenticate(s, key, touch_after=timedelta(0), cache=cache)
    with runtime.transaction() as s:
        assert s.get(ApiKey, key_id).last_used_at > first
