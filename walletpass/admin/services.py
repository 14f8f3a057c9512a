"""Admin operations that span several rows: re-issuing a pass, issuing an offer to a
segment (a program's passes are refreshed by walletpass.passes.refresh). Flask-free; the
caller's transaction commits."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.loyalty.models import Member, Program
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import issue_coupon, void_coupon
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import issue_pass, set_status


def void_pass(session: Session, settings: Settings, pass_row: Pass) -> None:
    if pass_row.coupon_id is not None:
        # A coupon's pass is the coupon: void both, or the coupon stays usable by its id.
        coupon = session.get(Coupon, pass_row.coupon_id)
        assert coupon is not None
        void_coupon(session, settings, coupon)
        return
    set_status(session, pass_row, PassStatus.VOIDED, settings)


def reissue_pass(session: Session, settings: Settings, pass_row: Pass) -> Pass:
    """Void a member's pass and issue a fresh one (new serial and barcode) for the same
    member: a lost or shared phone keeps no working card."""
    if pass_row.member_id is None:
        raise errors.ActionNotAllowed("only a member's pass can be re-issued here")
    # The old pass only: a re-issued coupon stays usable through its new pass.
    set_status(session, pass_row, PassStatus.VOIDED, settings)
    return issue_pass(
        session,
        settings,
        merchant_id=pass_row.merchant_id,
        template=pass_row.template,
        program_id=pass_row.program_id,
        member_id=pass_row.member_id,
        coupon_id=pass_row.coupon_id,
    )


def issue_offer_to_members(
    session: Session,
    settings: Settings,
    offer: Offer,
    *,
    program_id: int | None = None,
    tier: str | None = None,
) -> int:
    """A coupon (with its own pass) for every member of a program, or of one tier.

    Members who already hold a coupon of this offer are skipped, so issuing twice to the
    same segment does not double anyone's coupon.

    :return: how many coupons were issued.
    """
    query = select(Member.id).where(
        ~select(Coupon.id)
        .where(Coupon.offer_id == offer.id, Coupon.member_id == Member.id)
        .exists()
    )
    if program_id is not None:
        query = query.where(Member.program_id == program_id)
    if tier:
        query = query.where(func.lower(Member.tier) == tier.lower())
    member_ids = list(session.scalars(query.order_by(Member.id)))
    for member_id in member_ids:
        issue_coupon(session, settings, offer, member_id=member_id)
    return len(member_ids)


def tiers_of(program: Program) -> list[str]:
    levels = (program.rules or {}).get("levels") or []
    return [str(level.get("name")) for level in levels if level.get("name")]
