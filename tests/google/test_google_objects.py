"""Payload builders: ids, balances, states, dates — checked against the discovery schema."""

from __future__ import annotations

import pytest
from walletobjects_schema import WalletObjectsSchema

from walletpass.google import objects

ISSUER = "3388000000012345678"
CLASS_ID = f"{ISSUER}.program-coffee-v0"


@pytest.fixture(scope="module")
def schema() -> WalletObjectsSchema:
    return WalletObjectsSchema.load()


def variables(**overrides):
    base = {
        "serial": "S1",
        "barcode_message": "wp1-abc",
        "barcode_alt_text": "wp1-abc",
        "organization_name": "Corner Café",
        "program_name": "Coffee Club",
        "background_hex": "#1f3b4d",
        "logo_url": "https://wallet.example.test/logo.png",
        "member_name": "Ada",
        "member_number": "wp1-abc",
        "program_kind": "points",
        "points": 120,
        "stamps": None,
        "stamps_goal": None,
        "tier": "",
        "offer_title": "Double points",
        "offer_text": "This weekend only",
        "expiry_warning": "",
        "rewards_text": "Free coffee at 100 points",
        "terms": "Issued by Corner Café.",
        "website_url": "https://corner.example",
        "language": "en",
        "status": "active",
    }
    base.update(overrides)
    return base


def build(**overrides):
    return objects.loyalty_object(
        variables(**overrides),
        object_id=f"{ISSUER}.pass-S1",
        class_id=CLASS_ID,
        state="ACTIVE",
    )


def test_ids_are_deterministic_and_sanitised():
    assert objects.program_class_id(ISSUER, "coffee club", 2) == f"{ISSUER}.program-coffee_club-v2"
    assert objects.offer_class_id(ISSUER, "spring/20%") == f"{ISSUER}.offer-spring_20_"
    assert objects.pass_object_id(ISSUER, "AB:12") == f"{ISSUER}.pass-AB_12"
    assert objects.sanitize_suffix("ok.-_Az09") == "ok.-_Az09"


@pytest.mark.parametrize(
    ("status", "state"), [("active", "ACTIVE"), ("voided", "INACTIVE"), ("expired", "EXPIRED")]
)
def test_states(status, state):
    assert objects.object_state(status) == state


def test_points_object(schema):
    body = build()
    assert body["loyaltyPoints"] == {"label": "Points", "balance": {"int": 120}}
    assert "secondaryLoyaltyPoints" not in body
    # The same payload as the Apple pass's barcode.
    assert body["barcode"] == {"type": "QR_CODE", "value": "wp1-abc", "alternateText": "wp1-abc"}
    assert body["accountName"] == "Ada"
    assert body["accountId"] == "wp1-abc"
    ids = [m["id"] for m in body["textModulesData"]]
    assert ids == ["offer", "rewards", "terms"]
    assert all("." not in i for i in ids)
    assert body["linksModuleData"]["uris"][0]["uri"] == "https://corner.example"
    assert schema.validate("LoyaltyObject", body, required=True, semantic=True) == []


def test_tiers_object_has_tier_as_secondary_points(schema):
    body = build(program_kind="tiers", tier="Gold", tier_discount="5% off every visit")
    assert body["secondaryLoyaltyPoints"] == {"label": "Tier", "balance": {"string": "Gold"}}
    assert {"id": "tier", "header": "Tier benefits", "body": "5% off every visit"} in body[
        "textModulesData"
    ]
    assert schema.validate("LoyaltyObject", body, required=True, semantic=True) == []


def test_stamps_object_shows_progress_as_string(schema):
    body = build(program_kind="stamps", points=None, stamps=7, stamps_goal=10)
    assert body["loyaltyPoints"]["balance"] == {"string": "7/10"}
    assert schema.validate("LoyaltyObject", body, required=True, semantic=True) == []


def test_membership_object_has_no_balance(schema):
    body = build(
        program_kind="membership", points=None, membership_valid_until="2031-01-01T00:00:00+00:00"
    )
    assert "loyaltyPoints" not in body
    assert {"id": "membership", "header": "Valid until", "body": "Jan 1, 2031"} in body[
        "textModulesData"
    ]
    assert schema.validate("LoyaltyObject", body, required=True, semantic=True) == []


def test_empty_arrays_are_still_sent_whole():
    body = build(offer_text="", rewards_text="", terms="", website_url="")
    assert body["textModulesData"] == []
    assert body["linksModuleData"] == {"uris": []}


def test_offer_object_interval_has_offsets(schema):
    body = objects.offer_object(
        variables(
            offer_valid_from="2030-05-01T08:00:00",  # naive: stored UTC
            offer_valid_until="2030-05-15T08:00:00+02:00",
            coupon_discount="20% off",
            coupon_terms="One per visit.",
            coupon_uses_left=3,
        ),
        object_id=f"{ISSUER}.pass-S2",
        class_id=f"{ISSUER}.offer-spring",
        state="EXPIRED",
    )
    assert body["validTimeInterval"] == {
        "start": {"date": "2030-05-01T08:00:00+00:00"},
        "end": {"date": "2030-05-15T08:00:00+02:00"},
    }
    assert body["state"] == "EXPIRED"
    assert [m["id"] for m in body["textModulesData"]] == ["discount", "uses_left", "terms"]
    assert schema.validate("OfferObject", body, required=True, semantic=True) == []


def test_classes_from_defaults_and_rendered(schema):
    loyalty = objects.finish_class(
        "loyaltyClass",
        None,
        variables(),
        class_id=CLASS_ID,
        callback_url="https://wallet.example.test/google/callbacks",
    )
    assert loyalty["reviewStatus"] == "UNDER_REVIEW"
    assert loyalty["callbackOptions"] == {"url": "https://wallet.example.test/google/callbacks"}
    assert schema.validate("LoyaltyClass", loyalty, required=True, semantic=True) == []
    offer = objects.finish_class(
        "offerClass",
        None,
        variables(coupon_title="20% off", coupon_terms="One per visit."),
        class_id=f"{ISSUER}.offer-spring",
        callback_url="http://127.0.0.1:5000/google/callbacks",  # not https: left out
    )
    assert "callbackOptions" not in offer
    assert schema.validate("OfferClass", offer, required=True, semantic=True) == []
    rendered = objects.finish_class(
        "loyaltyClass",
        {"id": "${google_class_id}", "issuerName": "X", "programName": "Y"},
        variables(),
        class_id=CLASS_ID,
        callback_url=None,
    )
    assert rendered["id"] == CLASS_ID
    assert rendered["issuerName"] == "X"
