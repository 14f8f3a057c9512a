"""The Google Wallet fields of 2026 (issue 22, part 2): merchantLocations from the shop's
stores, an offer's window as a value added module shown only inside it, the app link to
the card page, the offer's expiry notice. Payload builders checked against the discovery
schema; the stores through the database (SQLite, or PostgreSQL when
WALLETPASS_TEST_DATABASE_URL is set) and the worker to the stand-in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import pytest
from googlekit import google_fixture, google_pki_fixture  # noqa: F401 - fixtures, by name
from standins.google_server import GoogleStandIn, make_service_account
from walletobjects_schema import WalletObjectsSchema

from walletpass.cards.locations import locations_changed
from walletpass.cards.variables import pass_variables
from walletpass.google import objects
from walletpass.passes.models import Pass
from walletpass.tenancy.models import Store

ISSUER = "3388000000012345678"
START = datetime(2030, 5, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(days=14)


@pytest.fixture(scope="module")
def schema() -> WalletObjectsSchema:
    return WalletObjectsSchema.load()


def coupon_variables(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "serial": "S1",
        "barcode_message": "wp1-abc",
        "organization_name": "Corner Café",
        "coupon_title": "Free pastry",
        "coupon_discount": "100% off",
        "coupon_uses_left": 1,
        "offer_valid_from": START.isoformat(),
        "offer_valid_until": END.isoformat(),
        "language": "en",
        "merchant_timezone": "Asia/Taipei",
        "card_url": "https://wallet.example.test/p/S1",
        "website_url": "https://corner.example",
    }
    base.update(overrides)
    return base


def offer(**overrides: Any) -> dict[str, Any]:
    return objects.offer_object(
        coupon_variables(**overrides),
        object_id=f"{ISSUER}.pass-S1",
        class_id=f"{ISSUER}.offer-spring",
        state="ACTIVE",
    )


def test_a_windowed_offer_shows_its_window_only_inside_it(schema: WalletObjectsSchema) -> None:
    body = offer()
    (module,) = body["valueAddedModuleData"]
    # Google shows the module only inside the offer's own window, the object's interval.
    assert module["viewConstraints"]["displayInterval"] == body["validTimeInterval"]
    assert module["viewConstraints"]["displayInterval"] == {
        "start": {"date": "2030-05-01T00:00:00+00:00"},
        "end": {"date": "2030-05-15T00:00:00+00:00"},
    }
    assert module["uri"] == "https://wallet.example.test/p/S1"
    assert module["header"]["defaultValue"]["value"] == "Free pastry"
    # The window as the shop's day and hour (Taipei: UTC+8), in the holder's language.
    text = module["body"]["defaultValue"]["value"]
    assert text.startswith("Valid 5/1/30, 8:00")
    assert "5/15/30, 8:00" in text
    assert len(text) <= 50  # Google cuts the body at 50 characters
    assert schema.validate("OfferObject", body, required=True, semantic=True) == []


def test_an_offer_with_an_end_only_or_no_dates(schema: WalletObjectsSchema) -> None:
    ends = offer(offer_valid_from="")
    (module,) = ends["valueAddedModuleData"]
    assert module["viewConstraints"]["displayInterval"] == {
        "end": {"date": "2030-05-15T00:00:00+00:00"}
    }
    assert module["body"]["defaultValue"]["value"].startswith("Valid until 5/15/30")
    # No dates: no module (sent empty, so a PATCH clears an old one), no expiry notice.
    open_ended = offer(offer_valid_from="", offer_valid_until="")
    assert open_ended["valueAddedModuleData"] == []
    assert "validTimeInterval" not in open_ended
    assert "disableExpirationNotification" not in open_ended
    for body in (ends, open_ended):
        assert schema.validate("OfferObject", body, required=True, semantic=True) == []


def test_the_module_speaks_the_holders_language() -> None:
    (module,) = offer(language="el")["valueAddedModuleData"]
    assert module["body"]["defaultValue"] == {
        "language": "el",
        "value": module["body"]["defaultValue"]["value"],
    }
    assert module["body"]["defaultValue"]["value"].startswith("Ισχύει ")


def test_the_offer_expiry_notice_follows_the_offers_end() -> None:
    body = offer()
    assert body["validTimeInterval"]["end"] == {"date": "2030-05-15T00:00:00+00:00"}
    # Left on, on purpose: Google tells the holder about 48 h before the end.
    assert body["disableExpirationNotification"] is False


def test_the_app_link_opens_the_card_page(schema: WalletObjectsSchema) -> None:
    card = objects.loyalty_object(
        coupon_variables(program_kind="points", points=10),
        object_id=f"{ISSUER}.pass-S1",
        class_id=f"{ISSUER}.program-coffee-v0",
        state="ACTIVE",
        linked_offer_ids=[f"{ISSUER}.pass-S2"],
    )
    for body, name in ((card, "LoyaltyObject"), (offer(), "OfferObject")):
        link = body["appLinkData"]
        target = link["webAppLinkInfo"]["appTarget"]["targetUri"]
        assert target["uri"] == "https://wallet.example.test/p/S1"
        assert target["description"] == link["displayText"]["defaultValue"]["value"]
        assert len(link["displayText"]["defaultValue"]["value"]) <= 30
        assert "androidAppLinkInfo" not in link
        assert "iosAppLinkInfo" not in link
        assert schema.validate(name, body, required=True, semantic=True) == []
    # A card page on plain http (a dev server) is no place to send a phone.
    assert "appLinkData" not in offer(card_url="http://localhost:5000/p/S1")
    assert offer(card_url="http://localhost:5000/p/S1")["valueAddedModuleData"] == []


def test_the_validator_knows_the_new_fields_rules(schema: WalletObjectsSchema) -> None:
    body = offer()
    body["valueAddedModuleData"][0].pop("uri")
    body["appLinkData"]["webAppLinkInfo"]["appTarget"]["targetUri"].pop("description")
    body["merchantLocations"] = [{"latitude": 25.0, "longitude": 121.5}] * 11
    problems = [str(p) for p in schema.validate("OfferObject", body, semantic=True)]
    assert any("valueAddedModuleData[0].uri" in p for p in problems)
    assert any("targetUri.description" in p for p in problems)
    assert any("merchantLocations: 11 given, at most 10" in p for p in problems)
    card = {"id": f"{ISSUER}.c", "classId": f"{ISSUER}.k", "linkedOfferIds": ["no-issuer"]}
    assert [p.path for p in schema.validate("LoyaltyObject", card, semantic=True)] == [
        "$.linkedOfferIds[0]"
    ]
    far = {"latitude": 91.0, "longitude": 0.0}
    assert schema.validate("MerchantLocation", far, semantic=True)


# -- merchantLocations, through the database and the worker ------------------------------


@pytest.fixture
def settings(settings, google, tmp_path):  # type: ignore[no-untyped-def]
    account = make_service_account(tmp_path, google.token_uri)
    return settings.override(
        google_issuer_id=ISSUER,
        google_service_account_file=str(account.path),
        google_api_url=google.api_url,
        google_keys_url=google.keys_url,
    )


def _stores(session: Any, merchant_id: int, count: int) -> None:
    for n in range(count):
        session.add(
            Store(
                merchant_id=merchant_id,
                code=f"s{n}",
                name=f"Store {n}",
                latitude=25.0 + n / 100,
                longitude=121.5,
            )
        )
    session.add(Store(merchant_id=merchant_id, code="till-only", name="Kiosk"))  # no coordinates
    session.flush()


def test_the_classes_carry_the_shops_stores_as_merchant_locations(
    runtime: Any, settings: Any, client: Any, google: GoogleStandIn, worker: Any, schema: Any
) -> None:
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        program = factories.program(s, merchant, "points")
        member = factories.member(s, program)
        card = factories.member_pass(s, settings, member)
        coupon = factories.coupon_pass(s, settings, merchant, valid_until=END)
        _stores(s, merchant.id, 12)
        merchant_id, serials = merchant.id, (card.serial, coupon.serial)
        for row in (card, coupon):
            res = objects.build_pass_resources(s, settings, row, pass_variables(s, row, settings))
            locations = res.class_body["merchantLocations"]
            # Ten, the oldest first, coordinates only; the till-only store has none.
            assert locations == [
                {"latitude": 25.0 + n / 100, "longitude": 121.5} for n in range(10)
            ]
            assert "locations" not in res.class_body
            assert "locations" not in res.object_body
            name = res.class_resource[0].upper() + res.class_resource[1:]
            assert schema.validate(name, res.class_body, required=True, semantic=True) == []

    # Saved, then a store moves: the class on Google follows with the next sync.
    for serial in serials:
        assert client.get(f"/p/{serial}/google").status_code in (302, 303)
    with runtime.transaction() as s:
        moved = s.query(Store).filter_by(merchant_id=merchant_id, code="s0").one()
        moved.latitude, moved.longitude = 37.98, 23.73
        locations_changed(s, settings, merchant_id)
    worker.run_until_idle()
    with runtime.transaction() as s:
        ids = [s.query(Pass).filter_by(serial=serial).one().google_object_id for serial in serials]
    for resource, object_id in zip(("loyaltyObject", "offerObject"), ids, strict=True):
        class_id = google.stored(resource, object_id)["classId"]
        stored = google.stored(resource.replace("Object", "Class"), class_id)
        assert stored["merchantLocations"][0] == {"latitude": 37.98, "longitude": 23.73}
        assert len(stored["merchantLocations"]) == 10
