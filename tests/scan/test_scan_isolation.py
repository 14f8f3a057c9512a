"""Merchant A's till key cannot scan, read or redeem merchant B's passes."""

from __future__ import annotations

import pytest
from scan_helpers import Till, join, reward, shop
from sqlalchemy import bindparam, func, select

from walletpass.db import MERCHANT_PARAMETER, scoped_to_merchant
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.scan.models import Scan


def test_a_till_key_sees_nothing_of_another_merchant(client, runtime, settings):
    a = shop(runtime, settings, "points", {"amount_per_point": "1"})
    b = shop(runtime, settings, "points", {"amount_per_point": "1"})
    b_reward = reward(runtime, b, "B coffee", 0)
    b_card = join(runtime, settings, b, name="Bea")
    a_till = Till(client, a["key"])
    for body in (
        {"action": "lookup"},
        {"action": "purchase", "amount": "10", "receipt_id": "x"},
        {"action": "redeem_reward", "reward_id": b_reward},
        {"action": "stamp"},
    ):
        problem = a_till.scan(404, code=b_card["code"], **body)
        assert problem["type"] == "/problems/unknown-code"
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert s.scalar(select(func.count()).select_from(Scan).where(Scan.result == "ok")) == 0
        # The failed attempts are logged under A, never under B.
        merchants = set(s.scalars(select(Scan.merchant_id)).all())
        assert merchants == {a["merchant_id"]}
    # B's own till still works.
    assert Till(client, b["key"]).scan(code=b_card["code"])["member"]["name"] == "Bea"


def test_missing_wrong_or_revoked_keys(client, runtime, settings):
    a = shop(runtime, settings, "points", {"amount_per_point": "1"})
    card = join(runtime, settings, a)
    for headers in ({}, {"Authorization": "Bearer wp_nope_nope"}, {"Authorization": "Basic x"}):
        r = client.post("/api/v1/scans", json={"code": card["code"]}, headers=headers)
        assert r.status_code == 401
        assert r.mimetype == "application/problem+json"
        assert r.json["type"] == "/problems/unauthenticated"
    from walletpass.db import utcnow
    from walletpass.tenancy.models import ApiKey

    with runtime.transaction() as s:
        for key in s.scalars(select(ApiKey)):
            key.revoked_at = utcnow()
    r = client.post(
        "/api/v1/scans",
        json={"code": card["code"]},
        headers={"Authorization": f"Bearer {a['key']}"},
    )
    assert r.status_code == 401


def test_a_statement_with_the_tenant_filter_built_in_reads_only_its_merchant(runtime, settings):
    """The till's first query carries the tenant filter as a parameter: it finds only the
    session's merchant's rows, and another merchant's id as the parameter is refused."""
    a = shop(runtime, settings, "points", {"amount_per_point": "1"})
    b = shop(runtime, settings, "points", {"amount_per_point": "1"})
    a_card = join(runtime, settings, a, name="Ann")
    b_card = join(runtime, settings, b, name="Bea")
    names = scoped_to_merchant(select(Member.name).where(Member.id == bindparam("member_id")))
    with runtime.transaction(a["merchant_id"]) as s:
        mine = {MERCHANT_PARAMETER: a["merchant_id"]}
        assert s.scalars(names, {"member_id": a_card["member_id"]} | mine).all() == ["Ann"]
        assert s.scalars(names, {"member_id": b_card["member_id"]} | mine).all() == []
        theirs = {"member_id": b_card["member_id"], MERCHANT_PARAMETER: b["merchant_id"]}
        with pytest.raises(ValueError, match="this session's merchant"):
            s.execute(names, theirs)
