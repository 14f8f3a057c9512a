"""API keys in the admin: a key is shown once when created, works on the API, and is
refused by the API as soon as it is revoked (the process's key cache is told)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.tenancy.models import ApiKey

KEY = re.compile(r"wp_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}")


def _programs(client: Any, key: str) -> Any:
    return client.get("/api/v1/programs", headers={"Authorization": f"Bearer {key}"})


def test_a_created_key_works_until_it_is_revoked(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["owner"])
    r = post(client, "/admin/api-keys", {"name": "CRM sync", "scope": "read"})
    assert r.status_code == 201
    assert r.headers["Cache-Control"] == "no-store"
    shown = KEY.findall(r.get_data(as_text=True))
    assert len(set(shown)) == 1
    key = shown[0]
    assert key not in client.get("/admin/api-keys").get_data(as_text=True)  # shown once

    assert _programs(client, key).status_code == 200
    assert _programs(client, key).status_code == 200  # now from this process's cache
    with runtime.transaction() as s:
        key_id = s.scalars(select(ApiKey.id).where(ApiKey.name == "CRM sync")).one()
    r = post(client, f"/admin/api-keys/{key_id}/revoke", follow_redirects=True)
    assert r.status_code == 200
    assert "Key CRM sync revoked; requests using it are refused within 2 s." in r.get_data(
        as_text=True
    )
    refused = _programs(client, key)
    assert refused.status_code == 401
    assert refused.json["type"] == "/problems/unauthenticated"


def test_another_merchants_key_cannot_be_revoked(client, runtime):  # type: ignore[no-untyped-def]
    mine, theirs = make_shop(runtime), make_shop(runtime)
    sign_in(client, theirs.emails["owner"])
    r = post(client, "/admin/api-keys", {"name": "theirs", "scope": "read"})
    key = KEY.findall(r.get_data(as_text=True))[0]
    client.post("/admin/logout")
    sign_in(client, mine.emails["owner"])
    with runtime.transaction() as s:
        key_id = s.scalars(select(ApiKey.id).where(ApiKey.name == "theirs")).one()
    assert post(client, f"/admin/api-keys/{key_id}/revoke").status_code == 404
    with runtime.transaction() as s:
        assert s.get(ApiKey, key_id).revoked_at is None
    assert _programs(client, key).status_code == 200
