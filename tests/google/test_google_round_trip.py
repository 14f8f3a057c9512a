"""The issue's "done when": a member card and a coupon, each from creation to removal.

created → save link (≤ 1,800 chars, skinny JWT signed by the service account) → a change
PATCHes and notifies → the 4th notification in 24 h goes out silent → a ``del`` callback
records the removal. A coupon's changes (its uses left) go out silent: an offer has no
field Google notifies of, and the holder has just used it at the till. Everything over
HTTPS against the stand-in, every body schema-checked.
"""

from __future__ import annotations

import jwt as pyjwt
import pytest
from googlekit import (  # noqa: F401 - fixtures, registered by name
    ISSUER,
    client_fixture,
    coupon_pass,
    db_fixture,
    default_classes_fixture,
    google_fixture,
    google_pki_fixture,
    make_app,
    member_pass,
    service_account_fixture,
    settings_fixture,
)
from sqlalchemy import select
from standins.google_server import CallbackSigner
from walletobjects_schema import WalletObjectsSchema

from walletpass.db import transaction
from walletpass.google import savelink
from walletpass.jobs import registry
from walletpass.jobs.models import Job
from walletpass.jobs.registry import JobContext
from walletpass.loyalty.models import Member
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass, PassEvent

PREFIX = "https://pay.google.com/gp/v/save/"


def change_member(session, world, step):
    session.get(Member, world.member_id).points_balance = 100 + step * 10


def change_coupon(session, world, step):
    session.get(Coupon, world.coupon_id).uses = step


def setup_coupon(db):
    world = coupon_pass(db)
    with transaction(db) as session:
        coupon = session.get(Coupon, world.coupon_id)
        session.get(Offer, coupon.offer_id).uses_per_coupon = 10
    return world


@pytest.mark.usefixtures("default_classes")
@pytest.mark.parametrize(
    ("make", "change", "resource", "watched", "notified"),
    [
        (
            lambda db: member_pass(db, kind="tiers"),
            change_member,
            "loyaltyObject",
            "loyaltyPoints",
            ["NOTIFY_ON_UPDATE"] * 3 + [None],
        ),
        (setup_coupon, change_coupon, "offerObject", "textModulesData", [None] * 4),
    ],
    ids=["member_card", "coupon"],
)
def test_round_trip(
    google, client, settings, db, service_account, make, change, resource, watched, notified
):
    world = make(db)

    # Save link.
    with transaction(db) as session:
        pass_row = session.get(Pass, world.pass_id)
        link = savelink.save_url_for_pass(session, settings, client, pass_row)
        object_id = pass_row.google_object_id
    assert len(link) <= 1800
    claims = pyjwt.decode(
        link[len(PREFIX) :], service_account.public_key_pem, algorithms=["RS256"], audience="google"
    )
    assert (claims["iss"], claims["typ"]) == (service_account.email, "savetowallet")
    (objects_key,) = claims["payload"]
    assert claims["payload"][objects_key] == [
        {"id": object_id, "classId": google.stored(resource, object_id)["classId"]}
    ]
    assert WalletObjectsSchema.load().validate("Resources", claims["payload"]) == []

    # Four changes, each synced with notify: on a card three notify, the fourth is silent.
    services: dict = {}
    try:
        for step in range(1, 5):
            with transaction(db) as session:
                change(session, world, step)
            with transaction(db) as session:
                registry.get("google.sync").handler(
                    JobContext(settings, session, services),
                    Job(kind="google.sync", payload={"pass_id": world.pass_id, "notify": True}),
                )
    finally:
        services["google"].close()
    patches = google.calls("PATCH", f"/{resource}/{object_id}")
    assert [p.body.get("notifyPreference") for p in patches] == notified
    assert len({repr(p.body[watched]) for p in patches}) == 4  # each carried the new value
    assert google.stored(resource, object_id)[watched] == patches[-1].body[watched]

    # The holder deletes the pass; Google calls back.
    signer = CallbackSigner()
    google.keys_document = signer.keys_document()
    body = signer.envelope(
        issuer_id=ISSUER,
        class_id=patches[-1].body["classId"],
        object_id=object_id,
        event_type="del",
    )
    with make_app(settings, db).test_client() as http:
        response = http.post("/google/callbacks", data=body, content_type="application/json")
    assert response.status_code == 200
    with transaction(db) as session:
        kinds = session.scalars(
            select(PassEvent.kind).where(
                PassEvent.pass_id == world.pass_id, PassEvent.platform == "google"
            )
        ).all()
    assert kinds == ["removed"]
