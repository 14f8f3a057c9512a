"""Shared set-up for the till tests: a merchant, programs, a till key."""

from __future__ import annotations

from datetime import date
from typing import Any

import factories

from walletpass.loyalty.enrolment import enroll
from walletpass.loyalty.models import Program, Reward
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.models import Store

CAFE_POINTS = {"amount_per_point": "100", "points_to_currency": "0.10"}
STAMPS = {
    "goal": 10,
    "reward_name": "Free coffee",
    "intermediate_rewards": [{"at": 5, "name": "Free cookie"}],
}
TIERS = {
    "amount_per_point": "1.00",
    "points_to_currency": "0.10",
    "levels": [
        {"name": "Member", "min_spend": "0"},
        {"name": "Silver", "min_spend": "5000", "discount_percent": "10", "earn_multiplier": "1"},
        {"name": "Gold", "min_spend": "10000", "discount_percent": "20", "earn_multiplier": "1"},
    ],
}


class Till:
    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    def scan(self, expect: int = 200, headers: dict[str, str] | None = None, **body: Any) -> Any:
        r = self.client.post(
            "/api/v1/scans",
            json=body,
            headers={"Authorization": f"Bearer {self.key}", **(headers or {})},
        )
        assert r.status_code == expect, r.get_data(as_text=True)
        return r.json


def shop(runtime, settings, kind: str, rules: dict[str, Any], **merchant_kw: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s, **merchant_kw)
        store = Store(merchant_id=m.id, code="main", name="Main")
        s.add(store)
        s.flush()
        p = factories.program(s, m, kind, rules=rules)
        _, key = create_api_key(s, merchant_id=m.id, scope="till", store_id=store.id)
        return {"merchant_id": m.id, "program_id": p.id, "key": key, "store_id": store.id}


def join(
    runtime,
    settings,
    shop_info,
    *,
    name: str = "Ada",
    birthday: date | None = None,  # type: ignore[no-untyped-def]
    referral_code: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    with runtime.transaction(shop_info["merchant_id"]) as s:
        program = s.get(Program, shop_info["program_id"])
        member, pass_row, _ = enroll(
            s,
            settings,
            program,
            name=name,
            birthday=birthday,
            referral_code=referral_code,
            email=email or f"{name.lower()}@example.test",
        )
        return {
            "member_id": member.id,
            "code": pass_row.barcode,
            "serial": pass_row.serial,
            "referral_code": member.referral_code,
        }


def reward(runtime, shop_info, name: str, cost: int, **kw: Any) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction(shop_info["merchant_id"]) as s:
        r = Reward(
            merchant_id=shop_info["merchant_id"],
            program_id=shop_info["program_id"],
            name=name,
            cost_points=cost,
            **kw,
        )
        s.add(r)
        s.flush()
        return r.id
