"""An offer over time: what follows when it is saved, deactivated, starts or ends.

What a card shows is read at render time (walletpass.cards): a coupon of an ended or
withdrawn offer renders expired or void, an overlay outside its dates is not shown. But a
wallet only fetches a pass it is told has changed, and a moment passing writes nothing.
So every save of an offer (the admin and the API) goes through :func:`offer_saved`, which
marks the passes it touches changed at once and queues an ``offer.window`` job for each
of the offer's future start and end; the job marks them changed again at that moment
(the cards showing a campaign's message about the offer too) and moves offers-program
cards on to the next usable offer.

``offer.window``  ``{"offer_id", "at"}``: the offer's start or end ``at`` (ISO 8601) has
    come. An edit that moved the date leaves the old job behind: it finds that ``at`` is
    no longer one of the offer's dates and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from walletpass.campaigns.fanout import refresh_sent_passes
from walletpass.campaigns.models import Campaign, CampaignStatus
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.jobs.moments import enqueue_at_moments, moment_due
from walletpass.jobs.registry import JobContext, handler
from walletpass.loyalty.amounts import amount_problem, check_money
from walletpass.loyalty.models import Program, ProgramKind
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import _roll_over
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.models import Merchant

if TYPE_CHECKING:
    from walletpass.jobs.models import Job

WINDOW_JOB = "offer.window"


@dataclass(frozen=True)
class OfferShown:
    """Where an offer showed before an edit: an edit that moves its overlay to another
    program, or turns it off, must refresh the cards that showed it too."""

    program_id: int | None
    overlay: bool

    @classmethod
    def of(cls, offer: Offer) -> OfferShown:
        return cls(offer.program_id, offer.overlay)


def usable_by_time(offer: Offer, now: datetime) -> bool:
    """Whether the offer is active and has not ended (it may not have started yet)."""
    return offer.active and (offer.valid_until is None or offer.valid_until > now)


def check_discount(session: Session, offer: Offer) -> None:
    """An amount off must be one the shop's currency can hold (no TWD 50.5 off): refused
    (422) before the offer's passes are touched; the caller's transaction then writes nothing."""
    value = _amount_off(offer.discount)
    if value is not None:
        merchant = session.get(Merchant, offer.merchant_id)
        assert merchant is not None
        check_money(value, merchant.currency, "body.discount.value")


def discount_problem(
    session: Session, merchant_id: int, discount: dict[str, Any] | None, lang: str
) -> str | None:
    """Why the shop's currency cannot hold this amount off, in ``lang`` (the admin's form
    says so under the field), or None."""
    value = _amount_off(discount)
    if value is None:
        return None
    merchant = session.get(Merchant, merchant_id)
    assert merchant is not None
    return amount_problem(value, merchant.currency, lang)


def _amount_off(discount: dict[str, Any] | None) -> Decimal | None:
    if not discount or discount.get("type") != "amount":
        return None
    try:
        return Decimal(str(discount.get("value")))
    except InvalidOperation:
        return None  # the schemas and the form refuse what is not a number


def offer_saved(
    session: Session,
    settings: Settings,
    offer: Offer,
    before: OfferShown | None = None,
    now: datetime | None = None,
) -> None:
    """The offer was created or changed (its dates, its texts, deactivated): its coupon
    passes and the loyalty cards its overlay shows on are marked changed now, an
    offers-program card whose offer is no longer usable moves on to the next one, and the
    offer's future start and end are scheduled.

    :param before: where the offer showed before this change (:meth:`OfferShown.of`,
        taken before the edit); None for a new offer.
    """
    check_discount(session, offer)
    now = now or utcnow()
    session.flush()
    refresh_offer_passes(session, settings, offer, now)
    if usable_by_time(offer, now) and offer.program_id is not None:
        _revive_stranded(session, settings, offer.program_id, now)
    if (
        before is not None
        and before.overlay
        and before.program_id is not None
        and (not offer.overlay or offer.program_id != before.program_id)
    ):
        mark_changed(session, settings, passes=_loyalty_cards(before.program_id), notify=False)
    enqueue_at_moments(
        session,
        WINDOW_JOB,
        {"offer_id": offer.id},
        (offer.valid_from, offer.valid_until),
        merchant_id=offer.merchant_id,
        now=now,
    )


def refresh_offer_passes(
    session: Session, settings: Settings, offer: Offer, now: datetime
) -> list[int]:
    """Mark the passes that show ``offer`` changed, moving offers-program cards of an
    ended or withdrawn offer on to the next usable offer first. Returns the coupon
    passes marked."""
    coupons = select(Coupon.id).where(Coupon.offer_id == offer.id)
    passes = list(
        session.scalars(
            select(Pass)
            .where(Pass.coupon_id.in_(coupons), Pass.status == PassStatus.ACTIVE)
            .order_by(Pass.id)
        )
    )
    if not usable_by_time(offer, now):
        offers_programs = set(
            session.scalars(
                select(Program.id).where(
                    Program.id.in_({p.program_id for p in passes if p.program_id is not None}),
                    Program.kind == ProgramKind.OFFERS,
                )
            )
        )
        for pass_row in passes:
            if pass_row.program_id in offers_programs:
                # The member's one card in an offers program is the wallet channel: it
                # moves on rather than sit expired (the program's rollover rule decides).
                _roll_over(session, settings, pass_row, offer, now)
        _refresh_offer_campaigns(session, settings, offer, now)
    changed = [p.id for p in passes]
    mark_changed(session, settings, passes=changed, notify=False)
    if offer.overlay and offer.program_id is not None:
        mark_changed(session, settings, passes=_loyalty_cards(offer.program_id), notify=False)
    return changed


def _refresh_offer_campaigns(
    session: Session, settings: Settings, offer: Offer, now: datetime
) -> None:
    """A campaign's message about an offer leaves the cards with the offer, even when the
    offer ends before the campaign's own end (cut short, or deactivated): the cards that
    show it are marked changed now rather than at the campaign's end."""
    showing = session.scalars(
        select(Campaign).where(
            Campaign.offer_id == offer.id,
            Campaign.status.in_((CampaignStatus.SENDING, CampaignStatus.FINISHED)),
            or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
        )
    )
    for campaign in showing:
        refresh_sent_passes(session, settings, campaign, now)


def _revive_stranded(session: Session, settings: Settings, program_id: int, now: datetime) -> None:
    """An offers program's cards left on an ended, withdrawn or used-up offer, when there
    was no next offer to move to, move on now that the program has one."""
    program = session.get(Program, program_id)
    if program is None or program.kind != ProgramKind.OFFERS:
        return
    stranded = session.execute(
        select(Pass, Offer)
        .join(Coupon, Coupon.id == Pass.coupon_id)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(
            Pass.program_id == program_id,
            Pass.status == PassStatus.ACTIVE,
            ~Offer.active | (Offer.valid_until <= now) | (Coupon.status == "used"),
        )
        .order_by(Pass.id)
    ).all()
    moved = [p.id for p, old in stranded if _roll_over(session, settings, p, old, now)]
    mark_changed(session, settings, passes=moved, notify=False)


def _loyalty_cards(program_id: int) -> ColumnElement[bool]:
    # Overlays show on members' cards, not on coupons issued in the program.
    return (
        (Pass.program_id == program_id)
        & (Pass.status == PassStatus.ACTIVE)
        & Pass.coupon_id.is_(None)
    )


@handler(WINDOW_JOB)
def offer_window(ctx: JobContext, job: Job) -> None:
    offer = ctx.session.get(Offer, job.payload.get("offer_id"))
    if offer is None or moment_due(job, (offer.valid_from, offer.valid_until)) is None:
        return
    refresh_offer_passes(ctx.session, ctx.settings, offer, utcnow())
