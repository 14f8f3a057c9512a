"""Campaign job kinds.

``campaign.launch``  ``{"campaign_id"}``: a scheduled campaign's time has come; launch it.
``campaign.fanout``  ``{"campaign_id", "first_id", "last_id"}``: send one batch of
    recipients (ids in the range, still pending). Inside the merchant's quiet hours the
    batch re-queues itself for the end of them instead of sending.
``campaign.expire``  ``{"campaign_id"}``: the display window ended; refresh the cards
    that showed the message so both wallets drop it.
``campaign.measure`` ``{"campaign_id"}``: stamp recipients' ``delivered_at`` /
    ``redeemed_at`` from events (walletpass.campaigns.results.record_results); first an
    hour after the fan-out (the delivery window), then daily until the results window
    closes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update

from walletpass.campaigns import budget, fanout
from walletpass.campaigns.models import Campaign, CampaignRecipient, CampaignStatus
from walletpass.campaigns.results import record_results
from walletpass.campaigns.services import launch
from walletpass.db import utcnow
from walletpass.jobs.queue import enqueue
from walletpass.jobs.registry import JobContext, handler, on_done
from walletpass.tenancy.models import Merchant

if TYPE_CHECKING:
    from walletpass.jobs.models import Job


def _campaign(ctx: JobContext, job: Job) -> Campaign | None:
    return ctx.session.get(Campaign, job.payload.get("campaign_id"))


@handler("campaign.launch")
def launch_job(ctx: JobContext, job: Job) -> None:
    campaign = _campaign(ctx, job)
    if campaign is None or campaign.status != CampaignStatus.SCHEDULED:
        return  # deleted, cancelled, or launched by hand meanwhile
    merchant = ctx.session.get(Merchant, campaign.merchant_id)
    assert merchant is not None
    later = budget.quiet_end(merchant, utcnow())
    if later is not None:
        _requeue(ctx, job, later)
        return
    launch(ctx.session, ctx.settings, campaign)


@handler("campaign.fanout")
def fanout_job(ctx: JobContext, job: Job) -> None:
    campaign = _campaign(ctx, job)
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return
    merchant = ctx.session.get(Merchant, campaign.merchant_id)
    assert merchant is not None
    now = utcnow()
    later = budget.quiet_end(merchant, now)
    if later is not None:
        _requeue(ctx, job, later)
        return
    fanout.send_batch(
        ctx.session,
        ctx.settings,
        campaign,
        int(job.payload["first_id"]),
        int(job.payload["last_id"]),
        now,
    )


@handler("campaign.expire")
def expire_job(ctx: JobContext, job: Job) -> None:
    campaign = _campaign(ctx, job)
    if campaign is None:
        return
    fanout.refresh_sent_passes(ctx.session, ctx.settings, campaign, utcnow())


@handler("campaign.measure")
def measure_job(ctx: JobContext, job: Job) -> None:
    campaign = _campaign(ctx, job)
    if campaign is None or campaign.started_at is None:
        return
    record_results(ctx.session, campaign.id)
    now = utcnow()
    closes = campaign.started_at + timedelta(days=campaign.window_days + 1)
    if now < closes:
        enqueue(
            ctx.session,
            "campaign.measure",
            {"campaign_id": campaign.id},
            merchant_id=campaign.merchant_id,
            run_at=min(now + timedelta(days=1), closes),
        )


@on_done("google.message")
def record_google_delivery(ctx: JobContext, job: Job) -> None:
    """A campaign's Google message job is done: stamp its recipient row, where the
    results read Google deliveries; the job row is pruned after the retention period."""
    parsed = fanout.parse_google_message_key(job.dedupe_key)
    if parsed is None:
        return  # not a campaign's message
    campaign_id, pass_id = parsed
    ctx.session.execute(
        update(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.pass_id == pass_id,
            CampaignRecipient.google_delivered_at.is_(None),
        )
        .values(google_delivered_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _requeue(ctx: JobContext, job: Job, run_at) -> None:  # type: ignore[no-untyped-def]
    # A fresh job rather than RetryLater: waiting for quiet hours to end is not a
    # failure and must not use up the job's attempts. No dedupe key: this job is still
    # running, so a pending twin under its key cannot exist yet.
    enqueue(ctx.session, job.kind, dict(job.payload), merchant_id=job.merchant_id, run_at=run_at)
