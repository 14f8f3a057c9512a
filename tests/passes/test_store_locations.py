"""A merchant's stores with coordinates are the card's locations (Wallet shows the card on
the lock screen near them), and a card already on a phone is told when they change."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from sqlalchemy import select

from walletpass.passes.models import Pass
from walletpass.tenancy.apikeys import create_api_key


def _auth(card: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"ApplePass {card['token']}"}


def _pass_json(client, card) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.get(f"/apple/v1/passes/{card['type']}/{card['serial']}", headers=_auth(card))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return json.loads(z.read("pass.json"))


def _version(runtime, card) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(Pass.version).where(Pass.id == card["id"])) or 0


def _api(client, runtime, card):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        _, key = create_api_key(s, merchant_id=card["merchant_id"], scope="admin", name="a")

    def call(method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = client.open(
            f"/api/v1{path}", method=method, json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == expect, r.get_data(as_text=True)
        return r.json

    return call


def test_stores_with_coordinates_are_the_cards_locations(client, runtime, card):  # type: ignore[no-untyped-def]
    api = _api(client, runtime, card)
    assert "locations" not in _pass_json(client, card)

    # A till-only store (no coordinates) changes no card.
    version = _version(runtime, card)
    api("POST", "/stores", {"code": "back", "name": "Back office"}, expect=201)
    assert _version(runtime, card) == version

    harbour = api(
        "POST",
        "/stores",
        {"code": "harbour", "name": "Harbour", "latitude": 37.9421, "longitude": 23.6465},
        expect=201,
    )
    assert _version(runtime, card) == version + 1  # the phone is told to fetch again
    api(
        "POST",
        "/stores",
        {"code": "plaka", "name": "Plaka", "latitude": 37.97, "longitude": 23.73},
        expect=201,
    )
    assert _pass_json(client, card)["locations"] == [
        {"latitude": 37.9421, "longitude": 23.6465, "relevantText": "Harbour is nearby"},
        {"latitude": 37.97, "longitude": 23.73, "relevantText": "Plaka is nearby"},
    ]

    # Cleared coordinates: the store leaves the card, and the card is told.
    version = _version(runtime, card)
    api("PATCH", f"/stores/{harbour['id']}", {"latitude": None, "longitude": None})
    assert _version(runtime, card) == version + 1
    assert [loc["relevantText"] for loc in _pass_json(client, card)["locations"]] == [
        "Plaka is nearby"
    ]
