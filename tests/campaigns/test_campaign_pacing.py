"""A large campaign's pushes are paced, and its progress says so: the admin page, its
polled progress.json and the API's campaign resource show the rate and when the last
wallet is notified; every phone still gets its push."""

from __future__ import annotations

import time
from datetime import UTC, timedelta
from itertools import pairwise

import factories
import pytest
from sqlalchemy import select

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass.campaigns import fanout, pace, services
from walletpass.campaigns.models import Campaign
from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.worker import Worker
from walletpass.passes import changes
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.models import User

# Pushes a second: a batch of two takes 2 s of slots, so the next batch, run at once,
# always finds the cursor ahead of the clock and continues it.
RATE = 1
N = 6


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.override(push_rate=RATE)


@pytest.fixture(autouse=True)
def _small(monkeypatch):  # type: ignore[no-untyped-def]
    # A campaign of 4 recipients or more is "large" here (500 in production), sent in
    # batches of 2.
    monkeypatch.setattr(changes, "PACE_ABOVE", 3)
    monkeypatch.setattr(fanout, "PACE_ABOVE", 3)
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    monkeypatch.setattr(services, "BATCH_SPACING", timedelta(0))


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    """N consenting members, each card on a phone of its own, and a marketer."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s)
        program = factories.program(s, merchant, "points")
        tokens = []
        for i in range(N):
            row = factories.member_pass(
                s, settings, factories.member(s, program, marketing_consent=True)
            )
            tokens.append(factories.on_phone(s, row, f"{i:064x}").push_token)
        user = User(
            merchant_id=merchant.id, email="m@example.test", password_hash="x", role="marketer"
        )
        s.add(user)
        s.flush()
        _, key = create_api_key(s, merchant_id=merchant.id, scope="crm")
        return {"merchant_id": merchant.id, "user_id": user.id, "tokens": tokens, "key": key}


def _launch(runtime, settings, shop):  # type: ignore[no-untyped-def]
    with runtime.transaction(shop["merchant_id"]) as s:
        campaign = services.create_campaign(
            s,
            settings,
            merchant_id=shop["merchant_id"],
            name="Everyone",
            message="Double points",
            audience={"kind": "all"},
        )
        services.launch(s, settings, campaign)
        return campaign.id


def _fan_out(runtime, rounds=1000):  # type: ignore[no-untyped-def]
    """Run the campaign's fan-out batches only: the pushes stay queued on their slots."""
    worker = Worker(runtime, name="fanout", kinds=["campaign.fanout"], claim_size=1)
    for _ in range(rounds):
        if not worker.run_once():
            break


def _paced_pushes(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalars(
            select(Job.run_at)
            .where(Job.kind == "apple.push", Job.status == JobStatus.PENDING)
            .order_by(Job.run_at)
        ).all()


def test_the_progress_shows_the_pace_and_when_the_last_wallet_is_notified(
    runtime, settings, shop, client
):
    cid = _launch(runtime, settings, shop)
    _fan_out(runtime)
    run_ats = _paced_pushes(runtime)
    # Three batches of two, each on the slots after the one before: one push every 1/RATE.
    assert len(run_ats) == N
    assert [b - a for a, b in pairwise(run_ats)] == [timedelta(seconds=1 / RATE)] * (N - 1)
    with runtime.transaction(shop["merchant_id"]) as s:
        campaign = s.get(Campaign, cid)
        assert (campaign.status, campaign.push_rate, campaign.pushes_paced) == (
            "finished",
            RATE,
            N,
        )
        assert campaign.pushes_due_at == run_ats[-1]
        pushes = services.progress(s, cid)["pushes"]
    assert pushes["rate"] == RATE
    assert pushes["pushes"] == N
    assert pushes["last_due_at"] == run_ats[-1].isoformat()
    assert pushes["estimated"] is False

    with client.session_transaction() as session:
        session["user_id"] = shop["user_id"]
    page = client.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    assert f"pushes paced at {RATE}/s: all {N} wallets notified by " in page
    polled = client.get(f"/admin/campaigns/{cid}/progress.json").json
    assert polled["pace"].startswith(f"pushes paced at {RATE}/s: all {N} wallets notified by ")
    assert polled["pushes"]["rate"] == RATE

    api = client.get(
        f"/api/v1/campaigns/{cid}", headers={"Authorization": f"Bearer {shop['key']}"}
    ).json
    assert (api["push_rate"], api["pushes_paced"]) == (RATE, N)
    assert api["pushes_due_at"].startswith(run_ats[-1].strftime("%Y-%m-%dT%H:%M:%S"))
    assert api["progress"]["pushes"]["pushes"] == N


def test_while_batches_remain_the_end_is_an_estimate(runtime, settings, shop):  # type: ignore[no-untyped-def]
    cid = _launch(runtime, settings, shop)
    _fan_out(runtime, rounds=1)  # one batch of two sent, four recipients pending
    with runtime.transaction(shop["merchant_id"]) as s:
        campaign = s.get(Campaign, cid)
        first_due = campaign.pushes_due_at
        pushes = services.progress(s, cid)["pushes"]
    assert pushes["estimated"] is True
    assert pushes["pushes"] == N  # two queued, four to come
    # The four still to come, one slot each, after the last slot taken (or now).
    assert pushes["last_due_at"] >= (first_due + timedelta(seconds=4 / RATE)).isoformat()


def test_a_small_campaign_is_pushed_at_once(runtime, settings, shop, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(changes, "PACE_ABOVE", 500)
    monkeypatch.setattr(fanout, "PACE_ABOVE", 500)
    before = utcnow()
    cid = _launch(runtime, settings, shop)
    _fan_out(runtime)
    assert all(run_at <= utcnow() for run_at in _paced_pushes(runtime))
    assert all(run_at >= before for run_at in _paced_pushes(runtime))
    with runtime.transaction(shop["merchant_id"]) as s:
        progress = services.progress(s, cid)
    assert progress["pushes"] is None
    assert pace.describe(progress, UTC, utcnow()) == "pushed at once"


def test_every_phone_gets_its_push(runtime, settings, shop, apns):  # type: ignore[no-untyped-def]
    settings = settings.override(
        apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert), push_rate=50
    )
    runtime.settings = settings
    _launch(runtime, settings, shop)
    worker = Worker(runtime, name="all")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        worker.run_until_idle()
        if not _paced_pushes(runtime):
            break
        time.sleep(0.02)  # the next slots come due
    assert sorted(p.token for p in apns.received) == sorted(shop["tokens"])


def test_the_pace_in_words():  # type: ignore[no-untyped-def]
    now = utcnow().replace(hour=10, minute=38, second=40, microsecond=0)
    progress = {
        "status": "finished",
        "sent": 100_000,
        "pushes": {
            "rate": 500,
            "pushes": 100_000,
            "last_due_at": (now + timedelta(seconds=200)).isoformat(),
            "due_in_seconds": 200,
            "estimated": False,
        },
    }
    assert pace.describe(progress, UTC, now) == (
        "pushes paced at 500/s: all 100,000 wallets notified by 10:42 (in 3 min 20 s)"
    )
    progress["pushes"]["estimated"] = True
    assert pace.describe(progress, UTC, now) == (
        "pushes paced at 500/s: about 100,000 wallets notified by about 10:42 (in 3 min 20 s)"
    )
    assert pace.duration(7500) == "2 h 5 min"
    assert pace.duration(45) == "45 s"
