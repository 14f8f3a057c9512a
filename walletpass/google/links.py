"""A member's coupons on their Google loyalty card: the linked offers.

A coupon issued to a member gets its own pass (walletpass.offers.services.issue_coupon);
on Google it becomes an offer object linked to the member's loyalty object, so it shows
on the loyalty card without the member opening the coupon's own save link. The loyalty
object's ``linkedOfferIds`` is the whole list, written with every PATCH of the card
(walletpass.google.sync): an offer drops off the card with the next write once its coupon
is used up, voided or its offer ended, and a missed trigger heals at the next balance
change. We write ``linkedOfferIds`` rather than call ``modifyLinkedOfferObjects`` (which
Google's reference marks deprecated) or ``linkedObjectIds`` (auto-linked passes, which
"cannot be unlinked": wrong for a coupon that ends); docs/google-wallet.md says more.

Only this module decides which coupons are live on a card; the job handlers in
walletpass.google.sync insert the offer objects and write the links.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.changes import queue_google_sync
from walletpass.passes.models import Pass, PassStatus

# Google documents no limit for linkedOfferIds; auto-linked passes stop at 50 per card.
# A shop that issues a member more live coupons than this shows the newest.
MAX_LINKED = 50


def live_coupon_passes(session: Session, member_id: int, now: datetime) -> list[Pass]:
    """The member's coupon passes a till would still accept (the rules of
    walletpass.offers.services.coupon_problem, bar the start: a coupon for an offer that
    starts next week is shown, with its dates), newest last."""
    rows = session.scalars(
        select(Pass)
        .join(Coupon, Coupon.id == Pass.coupon_id)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(
            Pass.member_id == member_id,
            Pass.status == PassStatus.ACTIVE,
            Coupon.status == "active",
            Coupon.uses < Offer.uses_per_coupon,
            Offer.active.is_(True),
            or_(Offer.valid_until.is_(None), Offer.valid_until > now),
            or_(Offer.total_cap.is_(None), Offer.redeemed_count < Offer.total_cap),
        )
        .order_by(Pass.id.desc())
        .limit(MAX_LINKED)
    ).all()
    return list(reversed(rows))


def loyalty_cards(session: Session, member_id: int) -> list[Pass]:
    """The member's active loyalty passes that Google holds: the cards their coupons are
    linked to."""
    return list(
        session.scalars(
            select(Pass)
            .where(member_cards(member_id), Pass.google_object_id.is_not(None))
            .order_by(Pass.id)
        )
    )


def member_cards(member_id: int) -> ColumnElement[bool]:
    """The member's active loyalty passes: the cards their coupons are linked to."""
    return (
        (Pass.member_id == member_id)
        & Pass.coupon_id.is_(None)
        & (Pass.status == PassStatus.ACTIVE)
    )


def queue_card_sync(session: Session, settings: Settings, member_id: int) -> int:
    """Queue a silent ``google.sync`` of the member's Google loyalty cards, whose write
    brings their linked offers in line. Returns the number of jobs queued."""
    return queue_google_sync(session, settings, member_cards(member_id))
