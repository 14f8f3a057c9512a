"""What a campaign adds to a pass: the current message shown in the card's offer field."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletpass.campaigns.fanout import message_for
from walletpass.campaigns.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    RecipientStatus,
)
from walletpass.db import utcnow
from walletpass.offers.models import Offer
from walletpass.passes.models import Pass


def campaign_overlay(
    session: Session, pass_row: Pass, now: datetime | None = None
) -> tuple[str, str] | None:
    """(title, text) of the newest campaign message for this pass's member, or None.

    Only loyalty cards show campaigns (a coupon pass is its own offer). A held-out or
    skipped recipient has no ``sent`` row, so it never shows; a campaign shows from its
    send until ``ends_at``, and a newer one replaces it rather than stacking. Read at
    render time, so an ended message disappears by itself at the next fetch.
    """
    if pass_row.member_id is None or pass_row.coupon_id is not None:
        return None
    now = now or utcnow()
    found = session.execute(
        select(Campaign, CampaignRecipient.variant)
        .join(CampaignRecipient, CampaignRecipient.campaign_id == Campaign.id)
        .where(
            CampaignRecipient.member_id == pass_row.member_id,
            CampaignRecipient.status == RecipientStatus.SENT,
            CampaignRecipient.sent_at <= now,
            Campaign.status.in_((CampaignStatus.SENDING, CampaignStatus.FINISHED)),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
        )
        .order_by(CampaignRecipient.sent_at.desc(), CampaignRecipient.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    campaign, variant = found
    offer_title = ""
    if campaign.offer_id is not None:
        offer = session.get(Offer, campaign.offer_id)
        if offer is not None:
            # An offer campaign ends with its offer, even if the offer was cut short.
            if not offer.active or (offer.valid_until and offer.valid_until <= now):
                return None
            offer_title = offer.title
    title, text = message_for(campaign, variant, offer_title)
    return (title, text) if text else None
