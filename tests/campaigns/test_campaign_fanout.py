"""Fan-out end to end: APNs stand-in (HTTP/2 + TLS) and Google stand-in (HTTPS), through
the outbox worker; no duplicate Google message on retry; the overlay; campaign.finished."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

# googlekit (the Google stand-in fixtures) lives with the Google tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "google"))

import factories
import pytest
from googlekit import (  # noqa: F401 - fixtures, registered by name
    default_classes_fixture,
    google_fixture,
    google_pki_fixture,
    service_account_fixture,
)
from sqlalchemy import select, update

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass.apple.models import Device, Registration
from walletpass.campaigns import services
from walletpass.campaigns.models import Campaign, CampaignRecipient, RecipientStatus
from walletpass.campaigns.results import campaign_results
from walletpass.campaigns.state import campaign_overlay
from walletpass.cards.variables import pass_variables
from walletpass.crm.models import WebhookDelivery
from walletpass.crm.outbound import create_endpoint
from walletpass.db import utcnow
from walletpass.google import savelink
from walletpass.google.client import GoogleWalletClient
from walletpass.jobs.models import Job, JobStatus
from walletpass.passes.fetchlog import fetch_log
from walletpass.passes.models import Pass

N = 10  # Gold members; 2 of them (20 %) are held out


@pytest.fixture
def settings(settings, apns, google, service_account, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "BATCH_SPACING", timedelta(0))
    return settings.override(
        apns_url=apns.url,
        apns_ca_file=str(apns.pki.ca_cert),
        google_issuer_id="3388000000012345678",
        google_service_account_file=str(service_account.path),
        google_api_url=google.api_url,
        google_keys_url=google.keys_url,
    )


def _token(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture
def world(runtime, settings, default_classes):  # type: ignore[no-untyped-def]
    """Ten Gold members with cards: 0-5 on iPhones, 4-9 saved to Google (4, 5 on both)."""
    with runtime.transaction() as s, GoogleWalletClient(settings) as client:
        m = factories.merchant(s)
        p = factories.program(s, m, "points")
        factories.member(s, p, tier="Silver", marketing_consent=True)
        cards = []
        for i in range(N):
            mem = factories.member(s, p, tier="Gold", marketing_consent=True)
            row = factories.member_pass(s, settings, mem)
            if i < 6:
                device = Device(
                    merchant_id=m.id,
                    library_id=f"lib{i}",
                    pass_type_id=row.pass_type_id,
                    push_token=_token(i),
                )
                s.add(device)
                s.flush()
                s.add(Registration(merchant_id=m.id, device_id=device.id, pass_id=row.id))
            if i >= 4:
                savelink.save_url_for_pass(s, settings, client, row)
            cards.append(
                {
                    "pass_id": row.id,
                    "member_id": mem.id,
                    "serial": row.serial,
                    "auth": row.auth_token,
                    "object_id": row.google_object_id,
                    "token": _token(i) if i < 6 else None,
                }
            )
        s.flush()
        create_endpoint(
            s,
            settings,
            merchant_id=m.id,
            url="http://127.0.0.1:9/hook",
            events=["campaign.finished"],
        )
        return {"merchant_id": m.id, "program_id": p.id, "cards": cards}


def _launch(runtime, settings, world, **kw):  # type: ignore[no-untyped-def]
    with runtime.transaction(world["merchant_id"]) as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=world["merchant_id"],
            name="Gold weekend",
            title="Gold weekend",
            message="Double points for Gold this weekend",
            audience={"kind": "tier", "tier": "Gold"},
            **kw,
        )
        services.launch(s, settings, c)
        return c.id


def _recipients(runtime, cid):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return {
            r.member_id: r
            for r in s.scalars(
                select(CampaignRecipient).where(CampaignRecipient.campaign_id == cid)
            )
        }


def test_fanout_reaches_apns_and_google_once(
    runtime, settings, world, worker, apns, google, client
):
    cid = _launch(runtime, settings, world, holdout_share=0.2, seed=3)
    worker.run_until_idle()
    rec = _recipients(runtime, cid)
    treated = [c for c in world["cards"] if not rec[c["member_id"]].holdout]
    held = [c for c in world["cards"] if rec[c["member_id"]].holdout]
    assert len(held) == 2
    assert len(treated) == 8
    assert all(rec[c["member_id"]].status == RecipientStatus.SENT for c in treated)

    # Apple: one push per treated device token, none for the held-out.
    assert sorted(p.token for p in apns.received) == sorted(
        c["token"] for c in treated if c["token"]
    )
    # Google: the message landed on every treated object, once; none on the held-out.
    for c in world["cards"]:
        if c["object_id"] is None:
            continue
        stored = google.stored("loyaltyObject", c["object_id"])
        ids = [m["id"] for m in stored.get("messages", [])]
        assert ids == ([f"campaign-{cid}"] if c in treated else [])
        if c in treated:
            message = stored["messages"][0]
            assert message["header"] == "Gold weekend"
            assert message["body"] == "Double points for Gold this weekend"
            assert message["messageType"] == "TEXT_AND_NOTIFY"

    with runtime.transaction() as s:
        campaign = s.get(Campaign, cid)
        assert (campaign.status, campaign.sent, campaign.holdout_count) == ("finished", 8, 2)
        assert s.scalars(select(WebhookDelivery.event_type)).all() == ["campaign.finished"]
        progress = services.progress(s, cid)
        assert (
            progress["total"],
            progress["sent"],
            progress["pending"],
            progress["failed"],
            progress["percent"],
        ) == (8, 8, 0, 0, 100.0)
        # Overlay: the treated member's card shows the message; the held-out one's not.
        shown = campaign_overlay(s, s.get(Pass, treated[0]["pass_id"]))
        assert shown == ("Gold weekend", "Double points for Gold this weekend")
        assert campaign_overlay(s, s.get(Pass, held[0]["pass_id"])) is None
        # A retry of every Google message job (a crash after Google accepted) adds nothing.
        s.execute(
            update(Job)
            .where(Job.kind == "google.message")
            .values(status=JobStatus.PENDING, run_at=utcnow())
        )
    before = len(google.calls("POST"))
    worker.run_until_idle()
    after_calls = google.calls("POST")
    assert len(after_calls) == before  # no addMessage the second time
    for c in treated:
        if c["object_id"]:
            stored = google.stored("loyaltyObject", c["object_id"])
            assert [m["id"] for m in stored["messages"]] == [f"campaign-{cid}"]
    # Re-running a fan-out batch sends nobody twice.
    with runtime.transaction() as s:
        s.execute(update(Job).where(Job.kind == "campaign.fanout").values(status=JobStatus.PENDING))
    pushes = apns.count
    worker.run_until_idle()
    assert apns.count == pushes


def test_google_deliveries_outlive_their_pruned_jobs(runtime, settings, world, worker):
    cid = _launch(runtime, settings, world, holdout_share=0.0)
    worker.run_until_idle()
    with runtime.transaction(world["merchant_id"]) as s:
        before = campaign_results(s, cid)["platforms"]["google"]
    on_google = [c for c in world["cards"] if c["object_id"]]
    assert before["delivered"] == len(on_google) > 0
    # Eight days on, the hourly prune deletes the done jobs, the Google messages' too.
    with runtime.transaction() as s:
        s.execute(
            update(Job)
            .where(Job.status == JobStatus.DONE)
            .values(finished_at=utcnow() - timedelta(days=8))
        )
    worker.schedule_periodic()
    worker.run_until_idle()
    with runtime.transaction() as s:
        assert s.scalars(select(Job).where(Job.kind == "google.message")).all() == []
    with runtime.transaction(world["merchant_id"]) as s:
        assert campaign_results(s, cid)["platforms"]["google"] == before


def test_device_fetch_after_push_counts_as_delivered(runtime, settings, world, worker, client):
    cid = _launch(runtime, settings, world, holdout_share=0.0)
    worker.run_until_idle()
    card = world["cards"][0]  # on an iPhone only
    r = client.get(
        f"/apple/v1/passes/{settings.pass_type_id}/{card['serial']}",
        headers={"Authorization": f"ApplePass {card['auth']}"},
    )
    assert r.status_code == 200
    fetch_log(runtime).flush()  # what the thread does within WALLETPASS_FETCH_LOG_SECONDS
    with runtime.transaction(world["merchant_id"]) as s:
        res = campaign_results(s, cid)
    # Apple: 6 sent, 1 fetched. Google: 6 objects, all messages accepted.
    assert res["platforms"]["apple"] == {"sent": 6, "delivered": 1, "rate": round(1 / 6, 4)}
    assert res["platforms"]["google"] == {"sent": 6, "delivered": 6, "rate": 1.0}
    # Passes 4 and 5 are on both wallets: delivered through Google, so 1 + 6 in all.
    assert (res["sent"], res["delivered"]) == (10, 7)


def test_rendered_card_shows_the_campaign(runtime, settings, world, worker):
    _launch(runtime, settings, world)
    worker.run_until_idle()
    with runtime.transaction() as s:
        variables = pass_variables(s, s.get(Pass, world["cards"][0]["pass_id"]), settings)
    assert variables["offer_title"] == "Gold weekend"
    assert variables["offer_text"] == "Double points for Gold this weekend"


def test_a_newer_campaign_replaces_the_overlay(runtime, settings, world, worker):
    _launch(runtime, settings, world)
    worker.run_until_idle()
    with runtime.transaction(world["merchant_id"]) as s:
        c2 = services.create_campaign(
            s,
            settings,
            merchant_id=world["merchant_id"],
            name="second",
            title="Tonight",
            message="Free dessert tonight",
            audience={"kind": "tier", "tier": "Gold"},
        )
        services.launch(s, settings, c2)
    worker.run_until_idle()
    with runtime.transaction() as s:
        card = s.get(Pass, world["cards"][0]["pass_id"])
        assert campaign_overlay(s, card) == ("Tonight", "Free dessert tonight")
        # Once the newer one ends, the card falls back to the older one, then to nothing.
        s.execute(update(Campaign).where(Campaign.id == c2.id).values(ends_at=utcnow()))
    with runtime.transaction() as s:
        card = s.get(Pass, world["cards"][0]["pass_id"])
        assert campaign_overlay(s, card) == ("Gold weekend", "Double points for Gold this weekend")
