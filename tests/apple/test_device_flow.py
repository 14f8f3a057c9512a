"""The whole Apple device flow against a real HTTP/2 + TLS APNs stand-in, through the outbox."""

from __future__ import annotations

import threading
import time

import factories
import pytest
from apple_helpers import set_points, wait_for_older_writers
from pkpass_check import verify_pkpass
from sqlalchemy import func, select, update

from walletpass.apple.models import Device, Registration
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.worker import Worker
from walletpass.passes.changes import mark_changed
from walletpass.runtime import Runtime

DEVICE = "device-library-0001"
TOKEN = "0123456789abcdef" * 4


@pytest.fixture
def settings(settings, apns):  # type: ignore[no-untyped-def]
    return settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))


def _auth(card):  # type: ignore[no-untyped-def]
    return {"Authorization": f"ApplePass {card['token']}"}


def _register(client, card, device=DEVICE, token=TOKEN):  # type: ignore[no-untyped-def]
    return client.post(
        f"/apple/v1/devices/{device}/registrations/{card['type']}/{card['serial']}",
        json={"pushToken": token},
        headers=_auth(card),
    )


def test_device_flow_end_to_end(client, card, runtime, settings, worker, apns, certs_dir, tmp_path):
    # 1. The customer downloads the pass.
    r = client.get(f"/p/{card['serial']}.pkpass")
    assert r.status_code == 200
    pass_json = verify_pkpass(r.data, certs_dir / "ca.pem", tmp_path / "v1")
    assert pass_json["webServiceURL"] == "https://wallet.example.test/apple"
    assert pass_json["authenticationToken"] == card["token"]
    # 2. Wallet registers the device, then lists its passes with no tag.
    assert _register(client, card).status_code == 201
    listing = client.get(f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}")
    assert listing.json["serialNumbers"] == [card["serial"]]
    tag = listing.json["lastUpdated"]
    fetched = client.get(f"/apple/v1/passes/{card['type']}/{card['serial']}", headers=_auth(card))
    last_modified = fetched.headers["Last-Modified"]
    # 3. The balance changes; the worker pushes through APNs.
    set_points(runtime, settings, card, 120)
    assert worker.run_until_idle() == 1
    assert apns.count == 1
    push = apns.received[0]
    assert push.token == TOKEN
    assert push.headers["apns-topic"] == card["type"]
    assert push.body == b"{}"
    assert apns.peer_subjects[-1].get("userId") == card["type"]
    # 4. Wallet asks what changed since its tag, and fetches the new pass.
    wait_for_older_writers(runtime)
    changed = client.get(
        f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}",
        query_string={"passesUpdatedSince": tag},
    )
    assert changed.status_code == 200
    assert changed.json["serialNumbers"] == [card["serial"]]
    new = client.get(
        f"/apple/v1/passes/{card['type']}/{card['serial']}",
        headers={**_auth(card), "If-Modified-Since": last_modified},
    )
    assert new.status_code == 200
    new_json = verify_pkpass(new.data, certs_dir / "ca.pem", tmp_path / "v2")
    assert "120" in str(new_json["storeCard"])
    assert new_json["serialNumber"] == card["serial"]
    # 5. A repeat fetch is a 304; the tag now lists nothing.
    again = client.get(
        f"/apple/v1/passes/{card['type']}/{card['serial']}",
        headers={**_auth(card), "If-Modified-Since": new.headers["Last-Modified"]},
    )
    assert again.status_code == 304
    assert (
        client.get(
            f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}",
            query_string={"passesUpdatedSince": changed.json["lastUpdated"]},
        ).status_code
        == 204
    )
    # 6. The customer deletes the pass.
    r = client.delete(
        f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}/{card['serial']}",
        headers=_auth(card),
    )
    assert r.status_code == 200
    set_points(runtime, settings, card, 130)
    assert worker.run_until_idle() == 0
    assert apns.count == 1


def test_ten_changes_in_a_burst_push_once_per_device(client, card, runtime, settings, worker, apns):
    _register(client, card)
    _register(client, card, device="device-2", token="fe" * 32)
    for points in range(10):
        set_points(runtime, settings, card, points)
    worker.run_until_idle()
    assert sorted(p.token for p in apns.received) == sorted([TOKEN, "fe" * 32])


def _registrations(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(Registration)) or 0


def test_410_unregistered_deletes_the_registration(client, card, runtime, settings, worker, apns):
    _register(client, card)
    apns.respond(TOKEN, 410, "Unregistered", timestamp=int(time.time() * 1000) + 5000)
    set_points(runtime, settings, card, 1)
    worker.run_until_idle()
    assert _registrations(runtime) == 0
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 0
        assert s.scalars(select(Job.status)).all() == [JobStatus.DONE]


def test_410_older_than_a_reregistration_keeps_it(client, card, runtime, settings, worker, apns):
    _register(client, card)
    apns.respond(TOKEN, 410, "Unregistered", timestamp=int(time.time() * 1000) - 60_000)
    set_points(runtime, settings, card, 1)
    worker.run_until_idle()
    assert _registrations(runtime) == 1


def test_400_bad_device_token_deletes(client, card, runtime, settings, worker, apns):
    _register(client, card)
    apns.respond(TOKEN, 400, "BadDeviceToken")
    set_points(runtime, settings, card, 1)
    worker.run_until_idle()
    assert _registrations(runtime) == 0


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "TooManyRequests"), (500, "InternalServerError"), (503, "ServiceUnavailable")],
)
def test_transient_errors_retry_with_backoff(
    client, card, runtime, settings, worker, apns, status, reason
):
    _register(client, card)
    apns.respond(TOKEN, status, reason, times=1)
    set_points(runtime, settings, card, 1)
    worker.run_until_idle()
    with runtime.transaction() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == JobStatus.PENDING
        assert job.attempts == 1
        assert str(status) in (job.last_error or "")
        # Due again later, then it goes through.
        s.execute(update(Job).values(run_at=job.created_at))
    worker.run_until_idle()
    assert _registrations(runtime) == 1
    # The stand-in saw the refused attempt and the retry that went through.
    assert [p.token for p in apns.received] == [TOKEN, TOKEN]
    with runtime.transaction() as s:
        assert s.scalars(select(Job.status)).all() == [JobStatus.DONE]


def test_403_pauses_without_a_retry_storm(client, card, runtime, settings, worker, apns):
    _register(client, card)
    apns.respond(TOKEN, 403, "BadCertificate")
    set_points(runtime, settings, card, 1)
    worker.run_until_idle()
    with runtime.transaction() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == JobStatus.PENDING
        assert (job.run_at - job.created_at).total_seconds() > 600
    assert _registrations(runtime) == 1
    assert "walletpass_apns_certificate_error 1" in client.get("/metrics").get_data(as_text=True)
    # While paused, later batches are not sent at all.
    with runtime.transaction() as s:
        s.execute(update(Job).values(run_at=job.created_at))
    sent_before = apns.count
    worker.run_until_idle()
    assert apns.count == sent_before


def test_worker_killed_mid_batch_loses_no_push(client, card, runtime, settings, apns):
    _register(client, card)
    set_points(runtime, settings, card, 1)
    # Worker A claims the job, then dies before sending (its lease runs out at once here).
    dying = Runtime.create(settings.override(job_lease_seconds=0))
    try:
        claimed = Worker(dying, name="dying").claim()
        assert [j.kind for j in claimed] == ["apple.push"]
    finally:
        dying.close()
    assert apns.count == 0
    survivor = Worker(runtime, name="survivor")
    assert survivor.run_until_idle() == 1
    assert [p.token for p in apns.received] == [TOKEN]
    with runtime.transaction() as s:
        job = s.scalars(select(Job)).one()
        assert (job.status, job.locked_by, job.attempts) == (JobStatus.DONE, "survivor", 2)


@pytest.mark.postgres
def test_two_workers_never_send_a_job_twice(runtime, settings, apns):
    tokens = [f"{i:064x}" for i in range(3000)]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        mem = factories.member(s, p)
        row = factories.member_pass(s, settings, mem)
        for i, token in enumerate(tokens):
            device = Device(
                merchant_id=m.id,
                library_id=f"dev{i}",
                pass_type_id=row.pass_type_id,
                push_token=token,
            )
            s.add(device)
            s.flush()
            s.add(Registration(merchant_id=m.id, device_id=device.id, pass_id=row.id))
        s.flush()
        mark_changed(s, settings, passes=[row.id])
    runtimes = [Runtime.create(settings) for _ in range(2)]
    workers = [Worker(rt, name=f"w{i}", claim_size=100) for i, rt in enumerate(runtimes)]
    threads = [threading.Thread(target=w.run_until_idle) for w in workers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for rt in runtimes:
            rt.close()
    assert apns.count == len(tokens)
    assert sorted(p.token for p in apns.received) == sorted(tokens)
    with runtime.transaction() as s:
        by_worker = dict(
            s.execute(select(Job.locked_by, func.count()).group_by(Job.locked_by)).all()
        )
        assert (
            s.scalar(select(func.count()).select_from(Job).where(Job.status != JobStatus.DONE)) == 0
        )
    assert by_worker  # both workers' names appear when they interleave
