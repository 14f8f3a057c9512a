"""Scheduling (launch job run_at), quiet hours in the merchant's time zone, the marketing
budget across campaigns, and the Google reserve for balance updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factories
import pytest
from sqlalchemy import select, update

import walletpass.campaigns.jobs  # noqa: F401 - registers the campaign job kinds
from walletpass.campaigns import budget, services
from walletpass.campaigns.models import Campaign, CampaignRecipient, RecipientStatus
from walletpass.campaigns.state import campaign_overlay
from walletpass.db import utcnow
from walletpass.google.models import GoogleNotification
from walletpass.jobs.models import Job, JobStatus
from walletpass.passes.models import Pass
from walletpass.tenancy.models import Merchant


@pytest.fixture(autouse=True)
def _no_spacing(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "BATCH_SPACING", timedelta(0))


@pytest.fixture
def shop(runtime, settings):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s, timezone="Europe/Paris")
        p = factories.program(s, m, "points")
        ids = []
        for i in range(3):
            mem = factories.member(s, p, marketing_consent=True, tags={"early": i == 0})
            ids.append((mem.id, factories.member_pass(s, settings, mem).id))
        return {"merchant_id": m.id, "members": ids}


def _create(runtime, settings, shop, audience=None, **kw):  # type: ignore[no-untyped-def]
    with runtime.transaction(shop["merchant_id"]) as s:
        c = services.create_campaign(
            s,
            settings,
            merchant_id=shop["merchant_id"],
            name=kw.pop("name", "c"),
            message=kw.pop("message", "Hello"),
            audience=audience or {"kind": "all"},
            **kw,
        )
        return c.id


def test_scheduled_campaign_launches_from_its_job(runtime, settings, shop, worker):
    at = utcnow().replace(microsecond=0) + timedelta(hours=2)
    cid = _create(runtime, settings, shop, scheduled_at=at)
    with runtime.transaction() as s:
        assert s.get(Campaign, cid).status == "scheduled"
        job = s.scalars(select(Job).where(Job.kind == "campaign.launch")).one()
        assert job.payload == {"campaign_id": cid}
        assert job.run_at == at
    assert worker.run_until_idle() == 0  # not due yet
    with runtime.transaction() as s:
        s.execute(update(Job).where(Job.kind == "campaign.launch").values(run_at=utcnow()))
    worker.run_until_idle()
    with runtime.transaction() as s:
        campaign = s.get(Campaign, cid)
        assert (campaign.status, campaign.sent) == ("finished", 3)


def test_rescheduling_keeps_one_launch_job(runtime, settings, shop):
    cid = _create(runtime, settings, shop, scheduled_at=utcnow() + timedelta(hours=1))
    later = utcnow().replace(microsecond=0) + timedelta(hours=5)
    with runtime.transaction() as s:
        services.schedule(s, s.get(Campaign, cid), later)
        assert s.scalars(select(Job.run_at).where(Job.kind == "campaign.launch")).all() == [later]


def _paris(**kw):  # type: ignore[no-untyped-def]
    return Merchant(slug="x", name="x", timezone="Europe/Paris", **kw)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # 22:30 Paris (CET) in 21:00-08:00 → 08:00 next day Paris = 07:00 UTC.
        (datetime(2030, 1, 15, 21, 30, tzinfo=UTC), datetime(2030, 1, 16, 7, 0, tzinfo=UTC)),
        # 06:00 Paris, still quiet → 08:00 the same day.
        (datetime(2030, 1, 16, 5, 0, tzinfo=UTC), datetime(2030, 1, 16, 7, 0, tzinfo=UTC)),
        # 12:00 Paris: not quiet.
        (datetime(2030, 1, 16, 11, 0, tzinfo=UTC), datetime(2030, 1, 16, 11, 0, tzinfo=UTC)),
        # The night the clocks go forward: 23:00 CET → 08:00 CEST = 06:00 UTC.
        (datetime(2030, 3, 30, 22, 0, tzinfo=UTC), datetime(2030, 3, 31, 6, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_defer_to_the_local_end(moment, expected):
    merchant = _paris(quiet_start_minute=21 * 60, quiet_end_minute=8 * 60)
    assert budget.defer_for_quiet_hours(merchant, moment) == expected


def test_same_day_quiet_window_and_none():
    lunch = _paris(quiet_start_minute=12 * 60, quiet_end_minute=14 * 60)
    assert budget.quiet_end(lunch, datetime(2030, 6, 1, 10, 30, tzinfo=UTC)) == datetime(
        2030, 6, 1, 12, 0, tzinfo=UTC
    )  # 12:30 CEST → 14:00 CEST
    assert budget.quiet_end(lunch, datetime(2030, 6, 1, 12, 0, tzinfo=UTC)) is None
    assert budget.quiet_end(_paris(), datetime(2030, 6, 1, 12, 0, tzinfo=UTC)) is None


def test_scheduling_into_quiet_hours_defers_the_launch(runtime, settings, shop):
    with runtime.transaction() as s:
        m = s.get(Merchant, shop["merchant_id"])
        m.quiet_start_minute, m.quiet_end_minute = 21 * 60, 8 * 60
    at = datetime(2031, 1, 15, 21, 30, tzinfo=UTC)
    _create(runtime, settings, shop, scheduled_at=at)
    with runtime.transaction() as s:
        run_at = s.scalars(select(Job.run_at).where(Job.kind == "campaign.launch")).one()
    assert run_at == datetime(2031, 1, 16, 7, 0, tzinfo=UTC)


def test_fanout_inside_quiet_hours_waits_for_their_end(runtime, settings, shop, worker):
    now = utcnow()
    with runtime.transaction() as s:
        m = s.get(Merchant, shop["merchant_id"])
        local = now.astimezone(budget.merchant_zone(m))
        minute = local.hour * 60 + local.minute
        m.quiet_start_minute, m.quiet_end_minute = (minute - 60) % 1440, (minute + 60) % 1440
        expected = budget.quiet_end(m, now)
    assert expected is not None
    assert expected > now
    cid = _create(runtime, settings, shop)
    with runtime.transaction(shop["merchant_id"]) as s:
        services.launch(s, settings, s.get(Campaign, cid), now=now)
        # The fan-out job was queued for the end of the quiet hours, not now.
        assert s.scalars(select(Job.run_at).where(Job.kind == "campaign.fanout")).one() == (
            expected
        )
        s.execute(update(Job).where(Job.kind == "campaign.fanout").values(run_at=now))
    worker.run_until_idle()
    with runtime.transaction() as s:
        statuses = set(s.scalars(select(CampaignRecipient.status)))
        assert statuses == {RecipientStatus.PENDING}
        jobs = s.scalars(select(Job).where(Job.kind == "campaign.fanout").order_by(Job.id)).all()
        assert [(j.status, j.attempts) for j in jobs] == [
            (JobStatus.DONE, 1),
            (JobStatus.PENDING, 0),
        ]
        assert abs((jobs[1].run_at - expected).total_seconds()) < 120


def test_third_marketing_send_in_the_window_is_skipped(runtime, settings, shop, worker):
    (a_member, a_pass), (b_member, _b_pass), _ = shop["members"]
    for n in (1, 2):  # two campaigns to member A only (the "early" tag)
        _create(
            runtime,
            settings,
            shop,
            {"kind": "tag", "tag": "early"},
            name=f"c{n}",
            message=f"message {n}",
            scheduled_at=utcnow(),
        )
        with runtime.transaction() as s:
            s.execute(update(Job).values(run_at=utcnow()))
        worker.run_until_idle()
    cid = _create(runtime, settings, shop, name="c3", message="message 3", scheduled_at=utcnow())
    worker.run_until_idle()
    with runtime.transaction(shop["merchant_id"]) as s:
        rows = {
            r.member_id: r
            for r in s.scalars(
                select(CampaignRecipient).where(CampaignRecipient.campaign_id == cid)
            )
        }
        assert (rows[a_member].status, rows[a_member].skip_reason) == ("skipped", "budget")
        assert rows[b_member].status == "sent"
        campaign = s.get(Campaign, cid)
        assert (campaign.sent, campaign.skipped_budget, campaign.status) == (2, 1, "finished")
        assert services.progress(s, cid)["skipped_budget"] == 1
        # A's card keeps the second campaign's message; B's shows the third.
        assert campaign_overlay(s, s.get(Pass, a_pass))[1] == "message 2"
    # Outside the 7-day window the budget is free again.
    with runtime.transaction() as s:
        s.execute(update(CampaignRecipient).values(sent_at=utcnow() - timedelta(days=8)))
        assert budget.over_budget(s, [a_pass], utcnow(), budget.limits_for(None)) == set()


def test_google_keeps_one_notification_for_balance_updates(runtime, settings, shop):
    now = utcnow()
    _, (_, b_pass), (_, c_pass) = shop["members"]
    with runtime.transaction() as s:

        def note(pass_id, object_id, kind, ago):  # type: ignore[no-untyped-def]
            s.add(
                GoogleNotification(
                    merchant_id=shop["merchant_id"],
                    pass_id=pass_id,
                    object_id=object_id,
                    kind=kind,
                    created_at=now - timedelta(hours=ago),
                )
            )

        note(b_pass, "one", "update", 1)
        note(b_pass, "two", "update", 1)
        note(b_pass, "two", "message", 2)
        note(c_pass, "old", "update", 30)
        note(c_pass, "old", "update", 30)
        note(c_pass, "refused", "quota_exceeded", 3)
        s.flush()
        loud = budget.google_may_notify(s, ["one", "two", "old", "refused", "fresh"], now)
    # "two" has used 2 of 3: the last one is kept for a balance change.
    assert loud == {"one", "old", "fresh"}


def test_cancel_stops_the_send_and_refreshes_cards(runtime, settings, shop, worker):
    cid = _create(runtime, settings, shop)
    _, (_, b_pass), _ = shop["members"]
    with runtime.transaction(shop["merchant_id"]) as s:
        services.launch(s, settings, s.get(Campaign, cid))
    Worker = type(worker)
    Worker(runtime, name="fanout", kinds=["campaign.fanout"]).run_until_idle()
    with runtime.transaction(shop["merchant_id"]) as s:
        assert campaign_overlay(s, s.get(Pass, b_pass)) == ("News", "Hello")
        version = s.get(Pass, b_pass).version
        services.cancel(s, s.get(Campaign, cid))
    Worker(runtime, name="expire", kinds=["campaign.expire"]).run_until_idle()
    with runtime.transaction(shop["merchant_id"]) as s:
        assert campaign_overlay(s, s.get(Pass, b_pass)) is None
        assert s.get(Pass, b_pass).version == version + 1  # wallets fetch the plain card
        assert s.get(Campaign, cid).status == "cancelled"
