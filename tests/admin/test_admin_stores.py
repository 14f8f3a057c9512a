"""Stores in the admin keep the rules the API keeps: a store with live till keys is not
deleted (its keys would lose their store and act for every store)."""

from __future__ import annotations

import re
from typing import Any

import factories
from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.loyalty.models import Program
from walletpass.passes.models import Pass
from walletpass.tenancy.models import ApiKey, Store

KEY = re.compile(r"wp_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}")


def _main_store(runtime: Any, merchant_id: int) -> int:
    with runtime.transaction(merchant_id) as s:
        return s.scalars(select(Store.id).where(Store.code == "main")).one()


def test_a_store_with_a_live_till_key_is_kept_until_the_key_is_revoked(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    store_id = _main_store(runtime, shop.merchant_id)
    sign_in(client, shop.emails["owner"])
    made = post(
        client, "/admin/api-keys", {"name": "Till 1", "scope": "till", "store_id": store_id}
    )
    assert made.status_code == 201
    assert KEY.search(made.get_data(as_text=True))

    r = post(client, f"/admin/stores/{store_id}/delete", follow_redirects=True)
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Store main still has live API keys: revoke them first" in page
    assert "Store main deleted." not in page
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Store, store_id) is not None
        key = s.scalars(select(ApiKey).where(ApiKey.name == "Till 1")).one()
        assert key.store_id == store_id  # still bound to its store
        key_id = key.id

    assert post(client, f"/admin/api-keys/{key_id}/revoke").status_code == 302
    r = post(client, f"/admin/stores/{store_id}/delete", follow_redirects=True)
    assert "Store main deleted." in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Store, store_id) is None
        assert s.get(ApiKey, key_id).revoked_at is not None


def test_giving_a_store_coordinates_in_the_admin_tells_the_cards(client, runtime, settings):  # type: ignore[no-untyped-def]
    # The stores with coordinates are the cards' locations (walletpass.cards.locations):
    # a card on a phone is bumped (pushed) when they change, and only then.
    shop = make_shop(runtime)
    with runtime.transaction() as s:
        program = s.get(Program, shop.program_id)
        card = factories.member_pass(s, settings, factories.member(s, program))
        card_id = card.id

    def version() -> int:
        with runtime.transaction() as s:
            return s.scalars(select(Pass.version).where(Pass.id == card_id)).one()

    store_id = _main_store(runtime, shop.merchant_id)
    sign_in(client, shop.emails["owner"])
    form = {"code": "main", "name": "Main", "address": "", "latitude": "", "longitude": ""}
    before = version()
    assert post(client, f"/admin/stores/{store_id}", form).status_code == 302
    assert version() == before  # saved without coordinates: nothing a card carries
    located = form | {"latitude": "48.8566", "longitude": "2.3522"}
    assert post(client, f"/admin/stores/{store_id}", located).status_code == 302
    assert version() == before + 1
    assert post(client, f"/admin/stores/{store_id}", located).status_code == 302
    assert version() == before + 1  # saved again unchanged
    assert post(client, f"/admin/stores/{store_id}/delete").status_code == 302
    assert version() == before + 2
