"""The discovery-document validator itself: it must catch what Google would refuse."""

from __future__ import annotations

import pytest
from walletobjects_schema import SchemaViolation, WalletObjectsSchema

ISSUER = "3388000000012345678"


@pytest.fixture(scope="module")
def schema() -> WalletObjectsSchema:
    return WalletObjectsSchema.load()


def good_object() -> dict:
    return {
        "id": f"{ISSUER}.pass-abc",
        "classId": f"{ISSUER}.program-coffee-v0",
        "state": "ACTIVE",
        "accountId": "M-1",
        "loyaltyPoints": {"label": "Points", "balance": {"int": 120}},
        "barcode": {"type": "QR_CODE", "value": "tok", "alternateText": "tok"},
        "textModulesData": [{"id": "offer", "header": "Offer", "body": "20% off"}],
        "validTimeInterval": {
            "start": {"date": "2030-01-01T00:00:00+00:00"},
            "end": {"date": "2030-02-01T00:00:00Z"},
        },
        "messages": [{"id": "m1", "header": "Hi", "body": "x", "messageType": "TEXT"}],
        "linksModuleData": {"uris": [{"id": "web", "uri": "https://example.test"}]},
    }


def messages_of(problems) -> str:
    return " | ".join(str(p) for p in problems)


def test_document_is_the_shipped_one(schema):
    assert "LoyaltyObject" in schema.schemas
    assert "Resources" in schema.schemas
    assert schema.revision


def test_valid_object_passes_every_check(schema):
    assert schema.validate("LoyaltyObject", good_object(), required=True, semantic=True) == []


def test_unknown_field_rejected_even_deep(schema):
    body = good_object()
    body["notifyOnUpdate"] = True
    body["barcode"]["colour"] = "red"
    text = messages_of(schema.validate("LoyaltyObject", body))
    assert "$.notifyOnUpdate: unknown field" in text
    assert "$.barcode.colour: unknown field for Barcode" in text


def test_types_checked_through_refs_and_arrays(schema):
    body = good_object()
    body["state"] = 1
    body["textModulesData"][0]["body"] = ["not", "a", "string"]
    body["loyaltyPoints"]["balance"] = {"int": 1.5}  # a decimal string would pass (proto3 JSON)
    body["barcode"] = "QR"
    problems = schema.validate("LoyaltyObject", body)
    paths = {p.path for p in problems}
    assert {
        "$.state",
        "$.textModulesData[0].body",
        "$.loyaltyPoints.balance.int",
        "$.barcode",
    } <= paths


def test_enum_unknown_and_deprecated_alias(schema):
    body = good_object()
    body["state"] = "active"  # deprecated lower-case alias
    body["barcode"]["type"] = "QR"  # not a value at all
    problems = schema.validate("LoyaltyObject", body)
    by_path = {p.path: p for p in problems}
    assert by_path["$.state"].deprecated
    assert "'QR' is not one of" in by_path["$.barcode.type"].message
    assert not by_path["$.barcode.type"].deprecated
    assert "qrCode" not in by_path["$.barcode.type"].message  # lists canonical values only


def test_notify_preference_only_canonical(schema):
    assert schema.validate("LoyaltyObject", {"notifyPreference": "NOTIFY_ON_UPDATE"}) == []
    problems = schema.validate("LoyaltyObject", {"notifyPreference": "notifyOnUpdate"})
    assert problems
    assert problems[0].path == "$.notifyPreference"


def test_int64_as_string_or_int_and_int32_range(schema):
    money = {"currencyCode": "EUR", "micros": "4500000"}
    assert schema.validate("Money", money) == []
    assert schema.validate("Money", {"micros": 4500000}) == []
    assert schema.validate("Money", {"micros": "4.5"})
    big = {"balance": {"int": 2**31}}
    assert "out of range for int32" in messages_of(schema.validate("LoyaltyPoints", big))
    assert schema.validate("LoyaltyPoints", {"balance": {"int": True}})


def test_deprecated_field_flagged(schema):
    problems = schema.validate("Barcode", {"type": "QR_CODE", "value": "x", "kind": "k"})
    assert [p.deprecated for p in problems] == [True]


def test_required_fields_opt_in(schema):
    body = {"id": f"{ISSUER}.x", "classId": f"{ISSUER}.c"}
    assert schema.validate("LoyaltyObject", body) == []
    problems = schema.validate("LoyaltyObject", body, required=True)
    assert [p.path for p in problems] == ["$.state"]
    klass = {"id": f"{ISSUER}.c", "issuerName": "Shop"}
    missing = {p.path for p in schema.validate("LoyaltyClass", klass, required=True)}
    assert missing == {"$.programName", "$.programLogo", "$.reviewStatus"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.update(id="pass-abc"), "is not <issuer>.<suffix>"),
        (lambda b: b.update(id=f"{ISSUER}.pass abc"), "is not <issuer>.<suffix>"),
        (lambda b: b["textModulesData"][0].update(id="offer.1"), "module id"),
        (lambda b: b["loyaltyPoints"].update(balance={"int": 1, "string": "1"}), "exactly one"),
        (lambda b: b["loyaltyPoints"].pop("balance"), "required inside loyaltyPoints"),
        (lambda b: b.update(messages=[{"id": str(i)} for i in range(11)]), "at most 10"),
        (
            lambda b: b["validTimeInterval"]["end"].update(date="2030-02-01T00:00:00"),
            "both carry an offset",
        ),
        (lambda b: b.update(heroImage={}), "exactly one of sourceUri and privateImageId"),
    ],
)
def test_semantic_rules(schema, mutate, expected):
    body = good_object()
    mutate(body)
    assert schema.validate("LoyaltyObject", body) == [] or expected  # structural may pass
    assert expected in messages_of(schema.validate("LoyaltyObject", body, semantic=True))


def test_hex_colour_rule(schema):
    klass = {"id": f"{ISSUER}.c", "hexBackgroundColor": "blue"}
    assert "#rgb/#rrggbb" in messages_of(schema.validate("LoyaltyClass", klass, semantic=True))
    klass["hexBackgroundColor"] = "#1f3b4d"
    assert schema.validate("LoyaltyClass", klass, semantic=True) == []


def test_resources_payload(schema):
    payload = {"loyaltyObjects": [{"id": f"{ISSUER}.p", "classId": f"{ISSUER}.c"}]}
    assert schema.validate("Resources", payload, semantic=True) == []
    assert schema.validate("Resources", {"loyaltyObject": []})  # singular key: unknown
    assert schema.validate("Resources", {"offerObjects": {"id": "x"}})  # not an array


def test_check_raises_with_all_problems(schema):
    with pytest.raises(SchemaViolation) as info:
        schema.check("AddMessageRequest", {"message": {"messageType": "PUSH", "x": 1}})
    assert len(info.value.problems) == 2
    with pytest.raises(KeyError):
        schema.validate("NoSuchSchema", {})
