"""Shared set-up for the /api/v1 resource tests: a merchant with one key per scope."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import factories

from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.models import Store

_seq = itertools.count(1)

STAMPS = {"goal": 10, "reward_name": "Free coffee"}
POINTS = {"amount_per_point": "1", "points_to_currency": "0.10"}
TIERS = {
    "amount_per_point": "1",
    "levels": [
        {"name": "Member", "min_spend": "0"},
        {"name": "Gold", "min_spend": "100", "discount_percent": "10"},
    ],
}


class Caller:
    """One API key talking to the app."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    def __call__(
        self,
        method: str,
        path: str,
        expect: int | None = None,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **query: Any,
    ) -> Any:
        r = self.client.open(
            "/api/v1" + path,
            method=method,
            json=json,
            query_string=query or None,
            headers={"Authorization": f"Bearer {self.key}", **(headers or {})},
        )
        if expect is not None:
            assert r.status_code == expect, (r.status_code, r.get_data(as_text=True))
        if r.status_code >= 400:
            assert r.mimetype == "application/problem+json", r.get_data(as_text=True)
        return r

    def get(self, path: str, expect: int = 200, **query: Any) -> Any:
        return self("GET", path, expect, **query).json

    def post(self, path: str, json: Any = None, expect: int = 201, **kw: Any) -> Any:
        return self("POST", path, expect, json=json, **kw).json

    def patch(self, path: str, json: Any, expect: int = 200, **kw: Any) -> Any:
        return self("PATCH", path, expect, json=json, **kw).json

    def delete(self, path: str, expect: int = 204) -> Any:
        return self("DELETE", path, expect)

    def all_pages(self, path: str, limit: int, **query: Any) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following next_cursor."""
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):
            params = {"limit": limit, **query}
            if cursor:
                params["cursor"] = cursor
            page = self.get(path, **params)
            assert len(page["data"]) <= limit
            items += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("pagination never ended")


@dataclass
class Shop:
    merchant_id: int
    store_id: int
    store_code: str
    keys: dict[str, str]
    client: Any
    program_ids: dict[str, int] = field(default_factory=dict)

    def as_(self, scope: str) -> Caller:
        return Caller(self.client, self.keys[scope])

    @property
    def admin(self) -> Caller:
        return self.as_("admin")

    @property
    def crm(self) -> Caller:
        return self.as_("crm")

    @property
    def till(self) -> Caller:
        return self.as_("till")

    @property
    def read(self) -> Caller:
        return self.as_("read")


def make_shop(runtime: Any, client: Any, **merchant_kw: Any) -> Shop:
    n = next(_seq)
    with runtime.transaction() as s:
        m = factories.merchant(s, slug=f"shop{n}", **merchant_kw)
        store = Store(merchant_id=m.id, code=f"main{n}", name="Main street")
        s.add(store)
        s.flush()
        keys = {}
        for scope in ("admin", "crm", "till", "read"):
            _, keys[scope] = create_api_key(
                s,
                merchant_id=m.id,
                scope=scope,
                name=scope,
                store_id=store.id if scope == "till" else None,
            )
        return Shop(m.id, store.id, store.code, keys, client)


def new_program(shop: Shop, kind: str = "points", rules: Any = None, **kw: Any) -> dict[str, Any]:
    n = next(_seq)
    body = {
        "slug": kw.pop("slug", f"{kind}-{shop.merchant_id}-{n}"),
        "name": kw.pop("name", f"{kind.title()} club"),
        "kind": kind,
        "rules": rules if rules is not None else {"points": POINTS, "stamps": STAMPS}.get(kind, {}),
        **kw,
    }
    return shop.admin.post("/programs", body)


def new_member(shop: Shop, program_id: int, **kw: Any) -> dict[str, Any]:
    n = next(_seq)
    body = {"program_id": program_id, "name": f"Ada {n}", "email": f"ada{n}@example.test", **kw}
    return shop.crm.post("/members", body)
