"""Apple's PassKit web service, as Wallet drives it (status codes, tags, Last-Modified)."""

from __future__ import annotations

import io
import zipfile

import factories
import pytest
from apple_helpers import set_points, wait_for_older_writers
from sqlalchemy import func, select

from walletpass.app import create_app
from walletpass.apple.models import AppleLog, Device, Registration
from walletpass.cards.build import build_bundle
from walletpass.jobs.models import Job, JobStatus
from walletpass.passes.changes import mark_changed
from walletpass.passes.fetchlog import fetch_log
from walletpass.passes.models import Pass, PassEvent
from walletpass.passes.services import remember_signature

DEVICE = "a1b2c3d4e5f6"
TOKEN = "ab" * 32


def auth(card):  # type: ignore[no-untyped-def]
    return {"Authorization": f"ApplePass {card['token']}"}


def reg_url(card, device=DEVICE):  # type: ignore[no-untyped-def]
    return f"/apple/v1/devices/{device}/registrations/{card['type']}/{card['serial']}"


def test_register_new_then_existing_refreshes_token(client, card, runtime):
    r = client.post(reg_url(card), json={"pushToken": TOKEN}, headers=auth(card))
    assert r.status_code == 201
    r = client.post(reg_url(card), json={"pushToken": "cd" * 32}, headers=auth(card))
    assert r.status_code == 200
    with runtime.transaction() as s:
        device = s.scalars(select(Device)).one()
        assert device.push_token == "cd" * 32
        assert s.scalar(select(func.count()).select_from(Registration)) == 1
        assert (
            s.scalar(
                select(func.count()).select_from(PassEvent).where(PassEvent.kind == "installed")
            )
            == 1
        )


@pytest.mark.parametrize(
    "header", [None, "ApplePass wrong-token-wrong-token-wrong", "Bearer x", ""]
)
def test_bad_token_is_401_and_writes_nothing(client, card, runtime, header):
    headers = {"Authorization": header} if header is not None else {}
    assert client.post(reg_url(card), json={"pushToken": TOKEN}, headers=headers).status_code == 401
    assert client.delete(reg_url(card), headers=headers).status_code == 401
    assert (
        client.get(f"/apple/v1/passes/{card['type']}/{card['serial']}", headers=headers).status_code
        == 401
    )
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 0


def test_unknown_serial_or_type_is_404(client, card):
    h = auth(card)
    assert (
        client.post(
            f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}/nope",
            json={"pushToken": TOKEN},
            headers=h,
        ).status_code
        == 404
    )
    assert (
        client.get(f"/apple/v1/passes/pass.other.type/{card['serial']}", headers=h).status_code
        == 404
    )
    assert (
        client.delete(
            f"/apple/v1/devices/{DEVICE}/registrations/x/{card['serial']}", headers=h
        ).status_code
        == 404
    )


def test_register_without_push_token_is_400(client, card):
    assert client.post(reg_url(card), data="nonsense", headers=auth(card)).status_code == 400
    assert client.post(reg_url(card), json={"pushToken": 5}, headers=auth(card)).status_code == 400


def test_list_tags_are_strings_and_never_miss_a_change(client, card, runtime, settings):
    client.post(reg_url(card), json={"pushToken": TOKEN}, headers=auth(card))
    # A second pass on the same device, changed in the same second as the first.
    with runtime.transaction() as s:
        from walletpass.loyalty.models import Member

        mem = s.get(Member, card["member_id"])
        other = factories.member_pass(s, settings, mem)
        other_card = {**card, "serial": other.serial, "token": other.auth_token, "id": other.id}
    client.post(reg_url(other_card), json={"pushToken": TOKEN}, headers=auth(other_card))

    wait_for_older_writers(runtime)
    r = client.get(f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}")
    assert r.status_code == 200
    assert sorted(r.json["serialNumbers"]) == sorted([card["serial"], other_card["serial"]])
    tag = r.json["lastUpdated"]
    assert isinstance(tag, str)

    url = f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}?passesUpdatedSince={tag}"
    assert client.get(url).status_code == 204

    set_points(runtime, settings, card, 50)
    with runtime.transaction(card["merchant_id"]) as s:
        mark_changed(s, settings, passes=[other_card["id"]])
    wait_for_older_writers(runtime)
    r = client.get(url)
    assert r.status_code == 200
    assert sorted(r.json["serialNumbers"]) == sorted([card["serial"], other_card["serial"]])
    new_tag = r.json["lastUpdated"]
    assert int(new_tag) > int(tag)
    assert client.get(url.replace(tag, new_tag)).status_code == 204


@pytest.mark.parametrize(
    "tag", ["2019-01-01T00:00:00Z", "1546300800", "garbage!", "", "-1", "99999999999999999999999"]
)
def test_old_or_odd_tags_do_not_crash(client, card, tag):
    client.post(reg_url(card), json={"pushToken": TOKEN}, headers=auth(card))
    r = client.get(
        f"/apple/v1/devices/{DEVICE}/registrations/{card['type']}",
        query_string={"passesUpdatedSince": tag},
    )
    assert r.status_code == 200
    assert r.json["serialNumbers"] == [card["serial"]]


def test_list_for_unknown_device_is_204(client, card):
    assert client.get(f"/apple/v1/devices/unknown/registrations/{card['type']}").status_code == 204


def test_get_pass_last_modified_and_304(client, card, runtime, settings, monkeypatch):
    from walletpass.passes import signing

    calls = []
    original = signing.SigningIdentity.sign

    def counting_sign(self, manifest):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, manifest)

    monkeypatch.setattr(signing.SigningIdentity, "sign", counting_sign)
    url = f"/apple/v1/passes/{card['type']}/{card['serial']}"
    r = client.get(url, headers=auth(card))
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    last_modified = r.headers["Last-Modified"]
    assert last_modified.endswith("GMT")
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert {"pass.json", "manifest.json", "signature"} <= set(z.namelist())
    # Unchanged: 304 on If-Modified-Since, and a plain re-fetch is not re-signed.
    r = client.get(url, headers={**auth(card), "If-Modified-Since": last_modified})
    assert r.status_code == 304
    assert client.get(url, headers=auth(card)).status_code == 200
    assert len(calls) == 1
    # Changed within the same second: Last-Modified still moves on, so no stale 304.
    set_points(runtime, settings, card, 99)
    r = client.get(url, headers={**auth(card), "If-Modified-Since": last_modified})
    assert r.status_code == 200
    assert r.headers["Last-Modified"] != last_modified
    assert len(calls) == 2
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert b"99" in z.read("pass.json")


def test_a_signature_is_kept_only_for_the_version_it_signed(client, card, runtime, settings):  # type: ignore[no-untyped-def]
    """A fetch renders and signs outside its write transaction; if the pass changed in
    between, the signature of the old version is not kept as the new one's."""
    set_points(runtime, settings, card, 12)
    with runtime.transaction(readonly=True) as s:
        bundle = build_bundle(s, settings, s.get(Pass, card["id"]))
    assert bundle.keep is not None
    set_points(runtime, settings, card, 13)  # the next version, before the write
    with runtime.transaction() as s:
        remember_signature(s, card["id"], bundle)
    with runtime.transaction() as s:
        row = s.get(Pass, card["id"])
        assert row.version == bundle.version + 1
        assert row.signed_version != bundle.version
    # The fetch of the current version signs it and keeps it, and records the fetch of
    # the version it served.
    r = client.get(f"/apple/v1/passes/{card['type']}/{card['serial']}", headers=auth(card))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        assert b"13" in z.read("pass.json")
    fetch_log(runtime).flush()  # fetches are written in batches, by a thread
    with runtime.transaction() as s:
        row = s.get(Pass, card["id"])
        assert row.signed_version == row.version
        fetched = s.scalars(
            select(PassEvent.version).where(
                PassEvent.pass_id == row.id, PassEvent.kind == "fetched"
            )
        ).all()
        assert fetched == [row.version]


def test_unparseable_if_modified_since_sends_the_pass(client, card):
    url = f"/apple/v1/passes/{card['type']}/{card['serial']}"
    r = client.get(url, headers={**auth(card), "If-Modified-Since": "yesterday-ish"})
    assert r.status_code == 200


def test_unregister_removes_device_with_its_last_registration(client, card, runtime):
    client.post(reg_url(card), json={"pushToken": TOKEN}, headers=auth(card))
    assert client.delete(reg_url(card), headers=auth(card)).status_code == 200
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 0
        assert (
            s.scalar(select(func.count()).select_from(PassEvent).where(PassEvent.kind == "removed"))
            == 1
        )
    # Idempotent: Wallet retries.
    assert client.delete(reg_url(card), headers=auth(card)).status_code == 200


def test_log_endpoint_stores_messages_without_auth(client, runtime):
    msg = "[2026-11-22] Web service error for pass.test.walletpass (serial number abc123): 500"
    assert client.post("/apple/v1/log", json={"logs": [msg, "second"]}).status_code == 200
    assert client.post("/apple/v1/log", json={"nope": 1}).status_code == 400
    with runtime.transaction() as s:
        rows = s.scalars(select(AppleLog).order_by(AppleLog.id)).all()
        assert [r.message for r in rows] == [msg, "second"]
        assert rows[0].serial == "abc123"


def test_burst_of_changes_is_one_pending_push_per_token(client, card, runtime, settings):
    client.post(reg_url(card), json={"pushToken": TOKEN}, headers=auth(card))
    client.post(reg_url(card, "second-device"), json={"pushToken": "ef" * 32}, headers=auth(card))
    for points in range(10):
        set_points(runtime, settings, card, points)
    with runtime.transaction() as s:
        jobs = s.scalars(select(Job).where(Job.kind == "apple.push")).all()
        assert sorted(j.payload["token"] for j in jobs) == sorted([TOKEN, "ef" * 32])
        assert all(j.status == JobStatus.PENDING for j in jobs)


def test_download_route_serves_a_pkpass(client, card):
    r = client.get(f"/p/{card['serial']}.pkpass")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    assert client.get("/p/unknown.pkpass").status_code == 404


def test_healthz_and_metrics(client, card, runtime, settings):
    assert client.get("/healthz").json == {"status": "ok"}
    set_points(runtime, settings, card, 5)
    body = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE walletpass_jobs gauge" in body
    assert 'walletpass_passes{status="active"} 1' in body


def test_metrics_need_the_token_when_one_is_set(runtime, monkeypatch):  # type: ignore[no-untyped-def]
    # Outbox depths and push outcomes are the operator's, not the public internet's.
    monkeypatch.setattr(runtime, "settings", runtime.settings.override(metrics_token="s3cret-m"))
    client = create_app(runtime.settings, runtime=runtime).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-m"}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401
        assert "walletpass_jobs" not in r.get_data(as_text=True)
    r = client.get("/metrics", headers={"Authorization": "Bearer s3cret-m"})
    assert r.status_code == 200
    assert "# TYPE walletpass_jobs gauge" in r.get_data(as_text=True)
