"""An API key's last use is recorded, at most once per resolution window."""

from __future__ import annotations

from datetime import timedelta

import factories

from walletpass.tenancy.apikeys import authenticate, create_api_key
from walletpass.tenancy.models import ApiKey


def test_last_use_is_recorded_once_per_window(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        row, key = create_api_key(s, merchant_id=merchant.id, scope="till")
        key_id = row.id
    with runtime.transaction() as s:
        assert s.get(ApiKey, key_id).last_used_at is None
        caller = authenticate(s, key, touch_after=timedelta(minutes=1))
        assert caller is not None and caller.id == key_id
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
