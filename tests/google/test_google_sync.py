"""google.sync and google.message job handlers: PATCH with whole arrays, the notification
budget, quota fallback, retries that do not duplicate, message pruning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from googlekit import (  # noqa: F401 - fixtures, registered by name
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
from sqlalchemy import select

from walletpass.db import transaction, utcnow
from walletpass.google import budget, savelink
from walletpass.google import sync as google_sync
from walletpass.google.models import GoogleNotification
from walletpass.jobs import registry
from walletpass.jobs.models import Job
from walletpass.jobs.registry import JobContext, PermanentFailure, RetryLater
from walletpass.loyalty.models import Member
from walletpass.passes.models import Pass

pytestmark = pytest.mark.usefixtures("default_classes")


@pytest.fixture
def services() -> Iterator[dict]:
    services: dict = {}
    yield services
    if "google" in services:
        services["google"].close()


def run(db, settings, services, kind: str, payload: dict) -> None:
    handler = registry.get(kind).handler
    with transaction(db) as session:
        handler(JobContext(settings, session, services), Job(kind=kind, payload=payload))


def saved(db, settings, client, world) -> str:
    """The holder opened the save link: class and object exist on Google."""
    with transaction(db) as session:
        pass_row = session.get(Pass, world.pass_id)
        savelink.save_url_for_pass(session, settings, client, pass_row)
        return pass_row.google_object_id


def set_points(db, world, points: int) -> None:
    with transaction(db) as session:
        session.get(Member, world.member_id).points_balance = points


def notifications(db, object_id: str) -> list[str]:
    with transaction(db) as session:
        return list(
            session.scalars(
                select(GoogleNotification.kind)
                .where(GoogleNotification.object_id == object_id)
                .order_by(GoogleNotification.id)
            )
        )


def test_handlers_are_registered():
    assert registry.get("google.sync").handler is google_sync.sync_pass
    assert registry.get("google.message").handler is google_sync.add_message


def test_member_card_round_trip(google, client, settings, db, services):
    world = member_pass(db, kind="points", points=40)
    object_id = saved(db, settings, client, world)
    path = f"/loyaltyObject/{object_id}"

    for points in (60, 80, 100, 120):
        set_points(db, world, points)
        run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})

    patches = google.calls("PATCH", path)
    assert [p.body["loyaltyPoints"]["balance"] for p in patches] == [
        {"int": 60},
        {"int": 80},
        {"int": 100},
        {"int": 120},
    ]
    # Three notifying writes, then the 4th in 24 h goes out silent.
    assert [p.body.get("notifyPreference") for p in patches] == [
        "NOTIFY_ON_UPDATE",
        "NOTIFY_ON_UPDATE",
        "NOTIFY_ON_UPDATE",
        None,
    ]
    assert notifications(db, object_id) == ["update", "update", "update"]
    # Whole arrays on every PATCH; never a PUT.
    assert all("textModulesData" in p.body and "linksModuleData" in p.body for p in patches)
    assert google.calls("PUT") == []
    assert google.stored("loyaltyObject", object_id)["loyaltyPoints"]["balance"] == {"int": 120}
    # The class was sent once for the whole run (process cache), not once per sync.
    assert len(google.calls("PATCH", "/loyaltyClass/" + patches[0].body["classId"])) <= 1


def test_coupon_round_trip(google, client, settings, db, services):
    world = coupon_pass(db)
    object_id = saved(db, settings, client, world)
    with transaction(db) as session:
        session.get(Pass, world.pass_id).status = "expired"
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": False})
    patch = google.calls("PATCH", f"/offerObject/{object_id}")[-1]
    assert patch.body["state"] == "EXPIRED"
    assert "notifyPreference" not in patch.body
    assert patch.body["validTimeInterval"]["end"]["date"].endswith("+00:00")


def test_voided_pass_is_inactive(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    with transaction(db) as session:
        session.get(Pass, world.pass_id).status = "voided"
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": False})
    assert google.stored("loyaltyObject", object_id)["state"] == "INACTIVE"


def test_quota_exceeded_redoes_the_write_silently(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    # Google already counted three notifications we have no rows for (another process, say).
    for _ in range(3):
        client.patch("loyaltyObject", object_id, {"state": "ACTIVE"}, notify=True)
    set_points(db, world, 99)
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    last_two = google.calls("PATCH", f"/loyaltyObject/{object_id}")[-2:]
    assert [(p.status, p.body.get("notifyPreference")) for p in last_two] == [
        (403, "NOTIFY_ON_UPDATE"),
        (200, None),
    ]
    assert google.stored("loyaltyObject", object_id)["loyaltyPoints"]["balance"] == {"int": 99}
    assert notifications(db, object_id) == [budget.QUOTA_EXCEEDED]
    # The refusal closes the window: the next change does not even try to notify.
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    assert "notifyPreference" not in google.calls("PATCH", f"/loyaltyObject/{object_id}")[-1].body


def test_budget_window_rolls(db, settings):
    world = member_pass(db)
    now = utcnow()
    with transaction(db) as session:
        for hours in (25, 23, 2):
            budget.record(
                session, world.merchant_id, world.pass_id, "o", "update", None,
                now - timedelta(hours=hours),
            )  # fmt: skip
        assert budget.used(session, "o", now) == 2
        assert budget.may_notify(session, "o", now)
        budget.record(session, world.merchant_id, world.pass_id, "o", "message", "m", now)
        assert not budget.may_notify(session, "o", now)
        assert budget.may_notify(session, "o", now + timedelta(hours=23, minutes=1))
        assert budget.may_notify(session, "other", now)


def test_server_error_is_retry_later(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    set_points(db, world, 55)  # a change to notify of (an unchanged balance never is)
    google.fail(f"/loyaltyObject/{object_id}", 500, method="PATCH")
    with pytest.raises(RetryLater):
        run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    # Nothing counted for the failed attempt (its transaction rolled back).
    assert notifications(db, object_id) == []
    google.fail(f"/loyaltyObject/{object_id}", 429, method="PATCH", headers={"Retry-After": "30"})
    with pytest.raises(RetryLater) as info:
        run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    assert info.value.delay == 30.0
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    assert notifications(db, object_id) == ["update"]


def test_refused_write_is_permanent(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    google.fail(f"/loyaltyObject/{object_id}", 400, method="PATCH")
    with pytest.raises(PermanentFailure):
        run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": False})


def test_missing_or_unsaved_pass_is_a_noop(google, settings, db, services):
    run(db, settings, services, "google.sync", {"pass_id": 424242, "notify": True})
    world = member_pass(db)  # never offered to Google: no object id
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    run(
        db,
        settings,
        services,
        "google.message",
        {"pass_id": world.pass_id, "message_id": "m", "header": "h", "body": "b"},
    )
    assert google.calls() == []


def test_object_missing_on_google_is_inserted(google, client, settings, db, services):
    # A full-object link was handed out while REST was down and never used.
    world = member_pass(db)
    with transaction(db) as session:
        pass_row = session.get(Pass, world.pass_id)
        pass_row.google_object_id = f"{settings.google_issuer_id}.pass-{pass_row.serial}"
        object_id = pass_row.google_object_id
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": False})
    assert google.stored("loyaltyObject", object_id)["state"] == "ACTIVE"


def message(world, message_id: str, *, notify: bool = True) -> dict:
    return {
        "pass_id": world.pass_id,
        "message_id": message_id,
        "header": "This weekend",
        "body": f"Double points ({message_id})",
        "notify": notify,
    }


def test_message_retry_does_not_duplicate(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    run(db, settings, services, "google.message", message(world, "campaign-12"))
    run(db, settings, services, "google.message", message(world, "campaign-12"))
    stored = google.stored("loyaltyObject", object_id)
    assert [m["id"] for m in stored["messages"]] == ["campaign-12"]
    assert stored["messages"][0]["messageType"] == "TEXT_AND_NOTIFY"
    assert len(google.calls("POST", f"/loyaltyObject/{object_id}/addMessage")) == 1
    assert notifications(db, object_id) == ["message"]


def test_messages_share_the_budget_and_quota_falls_back_to_text(
    google, client, settings, db, services
):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    for i in range(4):
        run(db, settings, services, "google.message", message(world, f"c{i}"))
    types = [m["messageType"] for m in google.stored("loyaltyObject", object_id)["messages"]]
    assert types == ["TEXT_AND_NOTIFY"] * 3 + ["TEXT"]
    # Budget lost (rows gone), Google still says no: the message goes out as TEXT.
    with transaction(db) as session:
        for row in session.scalars(select(GoogleNotification)):
            session.delete(row)
    run(db, settings, services, "google.message", message(world, "c4"))
    calls = google.calls("POST", f"/loyaltyObject/{object_id}/addMessage")[-2:]
    assert [(c.status, c.body["message"]["messageType"]) for c in calls] == [
        (403, "TEXT_AND_NOTIFY"),
        (200, "TEXT"),
    ]
    assert notifications(db, object_id) == [budget.QUOTA_EXCEEDED]


def test_more_than_ten_messages_are_pruned_oldest_first(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    for i in range(12):
        run(db, settings, services, "google.message", message(world, f"m{i}", notify=False))
    ids = [m["id"] for m in google.stored("loyaltyObject", object_id)["messages"]]
    assert ids == [f"m{i}" for i in range(2, 12)]
    prune = google.calls("PATCH", f"/loyaltyObject/{object_id}")[-1]
    assert set(prune.body) == {"messages"}  # only the array, sent whole
    assert len(prune.body["messages"]) == 9


def test_message_transient_failure_retries(google, client, settings, db, services):
    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    google.fail(f"/loyaltyObject/{object_id}/addMessage", 503)
    with pytest.raises(RetryLater):
        run(db, settings, services, "google.message", message(world, "x"))
    run(db, settings, services, "google.message", message(world, "x"))
    assert [m["id"] for m in google.stored("loyaltyObject", object_id)["messages"]] == ["x"]


def test_google_not_configured_is_a_noop(google, settings, db, services):
    world = member_pass(db)
    off = settings.override(google_issuer_id=None)
    run(db, off, services, "google.sync", {"pass_id": world.pass_id, "notify": True})
    assert "google" not in services


def test_a_design_change_reaches_the_class_on_google(google, client, settings, db, services):
    """Changing a program's design marks its passes changed; their syncs send the class
    again because its body changed (the process's cache is keyed by body, not by id)."""
    from walletpass.loyalty.models import Program
    from walletpass.passes.changes import mark_changed
    from walletpass.passes.refresh import program_passes

    world = member_pass(db)
    object_id = saved(db, settings, client, world)
    class_id = google.stored("loyaltyObject", object_id)["classId"]
    run(db, settings, services, "google.sync", {"pass_id": world.pass_id, "notify": False})
    sent_before = len(google.calls("PATCH", f"/loyaltyClass/{class_id}"))
    with transaction(db) as session:
        program = session.get(Program, world.program_id)
        program.design = {**program.design, "background": "#7a1f2b"}
        program.name = "Coffee Club Gold"
        marked = mark_changed(session, settings, passes=program_passes(program.id), notify=False)
        assert marked == [world.pass_id]
    with transaction(db) as session:
        queued = [
            job.payload
            for job in session.scalars(select(Job).where(Job.kind == "google.sync"))
            if job.payload["pass_id"] == world.pass_id
        ]
    assert queued == [{"pass_id": world.pass_id, "notify": False}]
    run(db, settings, services, "google.sync", queued[0])
    assert len(google.calls("PATCH", f"/loyaltyClass/{class_id}")) == sent_before + 1
    stored = google.stored("loyaltyClass", class_id)
    assert stored["hexBackgroundColor"] == "#7a1f2b"
    assert stored["programName"] == "Coffee Club Gold"
