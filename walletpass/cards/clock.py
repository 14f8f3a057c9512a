"""When the clock alone may next change what a card shows.

A pass's kept signature is handed out without rendering until its version changes or
this moment passes, whichever comes first. Each moment here also has a job that bumps the
passes when it comes (the offer and reward windows, a campaign's end, a membership's
lapse, the expiry sweep); this covers the minutes between the moment and that job, in
which a fetch must already show the new card. The moments are read generously: any start
or end that could touch the card counts, even if the card turns out unchanged (the fetch
then renders once, finds the same pass.json and keeps the signature).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.campaigns.models import Campaign, CampaignStatus
from walletpass.cards.memo import shared
from walletpass.loyalty import rules as loyalty_rules
from walletpass.loyalty.models import Member, Program, Reward
from walletpass.loyalty.programs import program_rules
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass

# Nothing scheduled: the card is rendered again after this long anyway, so that a change
# made by the clock that this module does not know of lasts a day at most.
LONGEST = timedelta(days=1)


def fresh_until(session: Session, pass_row: Pass, now: datetime) -> datetime:
    """The first moment after ``now`` at which the card may show something else, with no
    change to the pass's rows; at most :data:`LONGEST` away."""
    moments: list[datetime | None] = []
    if pass_row.coupon_id is not None:
        coupon = session.get(Coupon, pass_row.coupon_id)
        offer = session.get(Offer, coupon.offer_id) if coupon is not None else None
        if offer is not None:
            moments += [offer.valid_from, offer.valid_until]
    elif pass_row.program_id is not None:
        program_id = pass_row.program_id
        moments += shared(
            session,
            ("program moments", program_id),
            lambda: [
                *_window_edges(session, Offer, Offer.program_id == program_id, now),
                *_window_edges(session, Reward, Reward.program_id == program_id, now),
            ],
        )
    if pass_row.member_id is not None and pass_row.coupon_id is None:
        member = session.get(Member, pass_row.member_id)
        if member is not None:
            moments += _member_moments(session, member, now)
    upcoming = [m for m in moments if m is not None and m > now]
    return min([*upcoming, now + LONGEST])


def _window_edges(
    session: Session, model: type[Offer] | type[Reward], where: object, now: datetime
) -> list[datetime | None]:
    # The nearest start and the nearest end to come among the program's offers (overlays)
    # or rewards (the catalogue on the card).
    first_start, first_end = session.execute(
        select(
            func.min(model.valid_from).filter(model.valid_from > now),
            func.min(model.valid_until).filter(model.valid_until > now),
        ).where(where, model.active.is_(True))  # type: ignore[arg-type]
    ).one()
    return [first_start, first_end]


def _member_moments(session: Session, member: Member, now: datetime) -> list[datetime | None]:
    moments: list[datetime | None] = [member.expiry_warned_for]
    until = member.membership_valid_until
    if until is not None:
        moments.append(until)
        program = session.get(Program, member.program_id)
        parsed = program_rules(program) if program is not None else None
        if isinstance(parsed, loyalty_rules.MembershipRules) and parsed.reminder_days > 0:
            moments.append(until - timedelta(days=parsed.reminder_days))
    # The end of a campaign message the card may show, or of the offer it promotes: read
    # for the merchant's campaigns rather than the member's, once per read-only
    # transaction (the push job's batch); an end that touches another card only makes
    # this one render once more, to the same pass.json.
    merchant_id = member.merchant_id
    moments += shared(
        session, ("campaign ends", merchant_id), lambda: _campaign_ends(session, merchant_id, now)
    )
    return moments


def _campaign_ends(session: Session, merchant_id: int, now: datetime) -> list[datetime | None]:
    ends = session.execute(
        select(
            func.min(Campaign.ends_at).filter(Campaign.ends_at > now),
            func.min(Offer.valid_until).filter(Offer.valid_until > now),
        )
        .select_from(Campaign)
        .outerjoin(Offer, Offer.id == Campaign.offer_id)
        .where(
            Campaign.merchant_id == merchant_id,
            Campaign.status.in_((CampaignStatus.SENDING, CampaignStatus.FINISHED)),
        )
    ).one()
    return list(ends)
