"""/campaigns: messages on members' cards, with variants, a holdout and results."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Context, Routes, paginate
from walletpass.api.resources_schemas import (
    AudiencePreviewIn,
    AudiencePreviewOut,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    CampaignProgress,
    CampaignQuery,
    CampaignResults,
)
from walletpass.campaigns import services
from walletpass.campaigns.models import Campaign
from walletpass.campaigns.results import campaign_results

SCOPES = ("crm",)
routes = Routes()


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise errors.NotFound(f"no campaign {campaign_id}")
    return campaign


def _out(campaign: Campaign) -> CampaignOut:
    return CampaignOut.model_validate(campaign, from_attributes=True)


def _with_progress(session: Session, campaign: Campaign) -> CampaignProgress:
    return CampaignProgress(
        **_out(campaign).model_dump(), progress=services.progress(session, campaign.id)
    )


def _in_body(exc: errors.WalletpassError) -> errors.WalletpassError:
    """The domain names fields as in its form ("variants[0].share"); the API as sent."""
    exc.errors = [
        {**e, "field": "body." + str(e.get("field", "")).replace("[", ".").replace("]", "")}
        for e in exc.errors
    ]
    return exc


@routes.operation(
    "GET",
    "/campaigns",
    scopes=SCOPES,
    query=CampaignQuery,
    response=CampaignPage,
    tag="campaigns",
)
def list_campaigns(ctx: Context) -> CampaignPage:
    """List campaigns."""
    q: CampaignQuery = ctx.query
    stmt = select(Campaign)
    if q.status is not None:
        stmt = stmt.where(Campaign.status == q.status)
    rows, cursor = paginate(ctx.session, stmt, Campaign.id, limit=q.limit, cursor=q.cursor)
    return CampaignPage(data=[_out(c) for c in rows], next_cursor=cursor)


@routes.operation(
    "POST",
    "/campaigns",
    scopes=SCOPES,
    body=CampaignIn,
    response=CampaignProgress,
    status=201,
    tag="campaigns",
    problems=(errors.Conflict,),
)
def create_campaign(ctx: Context) -> CampaignProgress:
    """Create a draft campaign (scheduled when scheduled_at is given)."""
    body: CampaignIn = ctx.body
    try:
        campaign = services.create_campaign(
            ctx.session,
            ctx.settings,
            merchant_id=ctx.merchant_id,
            name=body.name,
            message=body.message,
            title=body.title,
            audience=body.audience,
            program_id=body.program_id,
            offer_id=body.offer_id,
            variants=[v.model_dump() for v in body.variants] if body.variants else None,
            holdout_share=body.holdout_share,
            scheduled_at=body.scheduled_at,
            ends_at=body.ends_at,
            window_days=body.window_days,
        )
    except errors.ValidationFailed as exc:
        raise _in_body(exc) from None
    return _with_progress(ctx.session, campaign)


@routes.operation(
    "POST",
    "/campaigns/audience-preview",
    scopes=SCOPES,
    body=AudiencePreviewIn,
    response=AudiencePreviewOut,
    tag="campaigns",
)
def preview_campaign_audience(ctx: Context) -> AudiencePreviewOut:
    """How many members an audience reaches now (nothing is saved)."""
    body: AudiencePreviewIn = ctx.body
    try:
        counts = services.preview_audience(
            ctx.session, ctx.merchant_id, body.audience, program_id=body.program_id
        )
    except errors.ValidationFailed as exc:
        raise _in_body(exc) from None
    return AudiencePreviewOut(counts=counts)


@routes.operation(
    "GET",
    "/campaigns/<int:campaign_id>",
    scopes=SCOPES,
    response=CampaignProgress,
    tag="campaigns",
)
def get_campaign(ctx: Context) -> CampaignProgress:
    """Get a campaign with its sending progress."""
    return _with_progress(ctx.session, _campaign(ctx.session, ctx.path["campaign_id"]))


@routes.operation(
    "POST",
    "/campaigns/<int:campaign_id>/launch",
    scopes=SCOPES,
    response=CampaignProgress,
    tag="campaigns",
    problems=(errors.Conflict,),
)
def launch_campaign(ctx: Context) -> CampaignProgress:
    """Launch now: pick the audience and queue the sending (a second call is a no-op)."""
    campaign = _campaign(ctx.session, ctx.path["campaign_id"])
    services.launch(ctx.session, ctx.settings, campaign)
    return _with_progress(ctx.session, campaign)


@routes.operation(
    "POST",
    "/campaigns/<int:campaign_id>/cancel",
    scopes=SCOPES,
    response=CampaignProgress,
    tag="campaigns",
    problems=(errors.Conflict,),
)
def cancel_campaign(ctx: Context) -> CampaignProgress:
    """Stop a campaign: recipients not yet sent are not sent."""
    campaign = _campaign(ctx.session, ctx.path["campaign_id"])
    services.cancel(ctx.session, campaign)
    return _with_progress(ctx.session, campaign)


@routes.operation(
    "GET",
    "/campaigns/<int:campaign_id>/results",
    scopes=SCOPES,
    response=CampaignResults,
    tag="campaigns",
)
def get_campaign_results(ctx: Context) -> CampaignResults:
    """Redemptions and visit uplift against the holdout group."""
    campaign = _campaign(ctx.session, ctx.path["campaign_id"])
    data: dict[str, Any] = campaign_results(ctx.session, campaign.id)
    return CampaignResults(campaign_id=campaign.id, results=data)
