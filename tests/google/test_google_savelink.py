"""Save links: pre-inserted resources, a skinny signed JWT, the full-object fallback."""

from __future__ import annotations

import socket

import jwt as pyjwt
import pytest
from googlekit import (  # noqa: F401 - fixtures, registered by name
    ISSUER,
    PUBLIC_URL,
    client_fixture,
    coupon_pass,
    db_fixture,
    default_classes_fixture,
    google_fixture,
    google_pki_fixture,
    member_pass,
    service_account_fixture,
    settings_fixture,
)
from walletobjects_schema import WalletObjectsSchema

from walletpass.db import transaction
from walletpass.google import savelink
from walletpass.google.client import GooglePermanent, GoogleWalletClient
from walletpass.passes.models import Pass

PREFIX = "https://pay.google.com/gp/v/save/"


def decode(link: str, sa) -> tuple[dict, dict]:
    assert link.startswith(PREFIX)
    token = link[len(PREFIX) :]
    header = pyjwt.get_unverified_header(token)
    claims = pyjwt.decode(token, sa.public_key_pem, algorithms=["RS256"], audience="google")
    return header, claims


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.usefixtures("default_classes")
@pytest.mark.parametrize("kind", ["points", "stamps", "coupon"])
def test_skinny_link_for_a_pass(google, client, settings, db, service_account, kind):
    world = coupon_pass(db) if kind == "coupon" else member_pass(db, kind=kind)
    with transaction(db) as session:
        pass_row = session.get(Pass, world.pass_id)
        link = savelink.save_url_for_pass(session, settings, client, pass_row)
        object_id = pass_row.google_object_id
    assert len(link) <= 1800
    header, claims = decode(link, service_account)
    assert header["kid"] == service_account.key_id
    assert claims["iss"] == service_account.email
    assert claims["typ"] == "savetowallet"
    assert claims["origins"] == [PUBLIC_URL]
    assert isinstance(claims["iat"], int)
    key = "offerObjects" if kind == "coupon" else "loyaltyObjects"
    resource = "offerObject" if kind == "coupon" else "loyaltyObject"
    stored = google.stored(resource, object_id)
    # Skinny: the object by id and class only; the content lives on Google's side.
    assert claims["payload"] == {key: [{"id": object_id, "classId": stored["classId"]}]}
    assert object_id == f"{ISSUER}.pass-" + stored["id"].split(".pass-")[1]
    assert WalletObjectsSchema.load().validate("Resources", claims["payload"], semantic=True) == []
    # Class inserted before the object (Google refuses objects of unknown classes).
    order = [r.path.split("/")[3] for r in google.calls("POST")]
    assert order == [resource.replace("Object", "Class"), resource]
    # A second link is idempotent: 409s turn into PATCHes, nothing duplicated.
    with transaction(db) as session:
        pass_row = session.get(Pass, world.pass_id)
        savelink.save_url_for_pass(session, settings, client, pass_row)
    assert [r.status for r in google.calls("POST", f"/{resource}")] == [200, 409]


def test_signer_is_cached(settings, google, client):
    savelink.clear_signer_cache()
    savelink.sign_link(settings, {"loyaltyObjects": [{"id": f"{ISSUER}.a"}]})
    savelink.sign_link(settings, {"loyaltyObjects": [{"id": f"{ISSUER}.b"}]})
    assert savelink._signer.cache_info().hits >= 1


SMALL_CLASS = {
    "id": f"{ISSUER}.program-c-v0",
    "issuerName": "Café",
    "programName": "Club",
    "programLogo": {"sourceUri": {"uri": "https://x.test/l.png"}},
    "reviewStatus": "UNDER_REVIEW",
}
SMALL_OBJECT = {
    "id": f"{ISSUER}.pass-1",
    "classId": SMALL_CLASS["id"],
    "state": "ACTIVE",
    "barcode": {"type": "QR_CODE", "value": "wp1-1"},
}


def test_rest_unreachable_falls_back_to_full_object_link(settings, service_account):
    dead = settings.override(google_api_url=f"https://127.0.0.1:{_closed_port()}/walletobjects/v1")
    with GoogleWalletClient(dead, timeout=(1.0, 1.0)) as offline:
        link = savelink.save_url(
            dead,
            offline,
            class_resource="loyaltyClass",
            class_body=SMALL_CLASS,
            object_resource="loyaltyObject",
            object_body=SMALL_OBJECT,
        )
    assert len(link) <= 1800
    _, claims = decode(link, service_account)
    assert claims["payload"] == {"loyaltyClasses": [SMALL_CLASS], "loyaltyObjects": [SMALL_OBJECT]}
    assert WalletObjectsSchema.load().validate("Resources", claims["payload"], semantic=True) == []


def test_fallback_too_long_is_a_clear_error(settings):
    dead = settings.override(google_api_url=f"https://127.0.0.1:{_closed_port()}/walletobjects/v1")
    big = {
        **SMALL_OBJECT,
        "textModulesData": [{"id": "t", "header": "Terms", "body": "x" * 1500}],
    }
    with (
        GoogleWalletClient(dead, timeout=(1.0, 1.0)) as offline,
        pytest.raises(savelink.SaveLinkError, match=r"unreachable.*1800"),
    ):
        savelink.save_url(
            dead,
            offline,
            class_resource="loyaltyClass",
            class_body=SMALL_CLASS,
            object_resource="loyaltyObject",
            object_body=big,
        )


def test_fallback_leaves_out_a_class_google_already_has(google, client, settings, service_account):
    client.ensure_class("loyaltyClass", SMALL_CLASS)
    google.fail("/loyaltyObject", 503, times=1)
    link = savelink.save_url(
        settings,
        client,
        class_resource="loyaltyClass",
        class_body=SMALL_CLASS,
        object_resource="loyaltyObject",
        object_body=SMALL_OBJECT,
    )
    _, claims = decode(link, service_account)
    assert claims["payload"] == {"loyaltyObjects": [SMALL_OBJECT]}


def test_refused_payload_is_not_papered_over(google, client, settings):
    with pytest.raises(GooglePermanent):
        savelink.save_url(
            settings,
            client,
            class_resource="loyaltyClass",
            class_body={**SMALL_CLASS, "bogus": 1},
            object_resource="loyaltyObject",
            object_body=SMALL_OBJECT,
        )
    google.violations.clear()  # provoked on purpose


@pytest.mark.parametrize("kind", ["tiers", "stamps", "coupon"])
def test_real_pass_templates_render_valid_classes(google, client, settings, db, kind):
    # No default_classes here: the class comes from pass_templates/<template>/google_class.json.
    world = coupon_pass(db) if kind == "coupon" else member_pass(db, kind=kind)
    with transaction(db) as session:
        pass_row = session.get(Pass, world.pass_id)
        link = savelink.save_url_for_pass(session, settings, client, pass_row)
    assert len(link) <= 1800
    (klass,) = [r.body for r in google.calls("POST") if r.path.endswith("Class")]
    assert klass["id"].startswith(f"{ISSUER}.")
    assert klass["reviewStatus"] == "UNDER_REVIEW"
    assert klass["callbackOptions"] == {"url": f"{PUBLIC_URL}/google/callbacks"}
    # The stand-in validated it against the discovery schema (required fields included).
