"""Offers and coupons: validity, uses, the total cap, and rollover to the next offer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.loyalty.models import Program, ProgramKind, normalize_email
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.changes import mark_changed, queue_google_sync
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import issue_pass, set_status


def coupon_problem(offer: Offer, coupon: Coupon, now: datetime) -> errors.WalletpassError | None:
    """Why this coupon cannot be used now, or None. The server decides, not the phone."""
    if coupon.status == "void" or not offer.active:
        return errors.CouponExpired(f"coupon for {offer.title!r} is void")
    if offer.valid_from and now < offer.valid_from:
        return errors.CouponExpired(f"{offer.title!r} starts {offer.valid_from:%Y-%m-%d %H:%M} UTC")
    if offer.valid_until and now > offer.valid_until:
        return errors.CouponExpired(f"{offer.title!r} ended {offer.valid_until:%Y-%m-%d %H:%M} UTC")
    if coupon.uses >= offer.uses_per_coupon:
        return errors.CouponUsedUp(f"coupon used {coupon.uses} of {offer.uses_per_coupon} time(s)")
    if offer.total_cap is not None and offer.redeemed_count >= offer.total_cap:
        return errors.OfferCapReached(f"{offer.title!r} reached its cap of {offer.total_cap}")
    return None


def _locked(session: Session, model, row_id: int):  # type: ignore[no-untyped-def]
    # FOR UPDATE on PostgreSQL; SQLite renders none, its writers are serialized already.
    query = select(model).where(model.id == row_id).with_for_update()
    row = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if row is None:
        raise errors.NotFound(f"no {model.__name__.lower()} {row_id}")
    return row


def redeem_coupon(
    session: Session, settings: Settings, coupon_id: int, now: datetime | None = None
) -> tuple[Coupon, Offer, Coupon | None]:
    """Use a coupon once. Returns (coupon, offer, the coupon its pass rolled over to).

    The offer row is locked too: its total cap is shared by every coupon.
    """
    now = now or utcnow()
    coupon = _locked(session, Coupon, coupon_id)
    offer = _locked(session, Offer, coupon.offer_id)
    problem = coupon_problem(offer, coupon, now)
    if problem is not None:
        raise problem
    coupon.uses += 1
    coupon.last_used_at = now
    offer.redeemed_count += 1
    if coupon.uses >= offer.uses_per_coupon:
        coupon.status = "used"
    emit(
        session,
        coupon.merchant_id,
        "coupon.redeemed",
        {
            "coupon_id": coupon.id,
            "offer_id": offer.id,
            "offer": offer.title,
            "member_id": coupon.member_id,
            "uses": coupon.uses,
            "uses_per_coupon": offer.uses_per_coupon,
        },
    )
    rolled = None
    changed = []
    for pass_row in session.scalars(select(Pass).where(Pass.coupon_id == coupon.id)):
        if coupon.status == "used":
            rolled = _roll_over(session, settings, pass_row, offer, now) or rolled
        changed.append(pass_row.id)
    mark_changed(session, settings, passes=changed)
    return coupon, offer, rolled


def next_offer(
    session: Session,
    merchant_program_id: int | None,
    after: Offer,
    now: datetime,
    *,
    member_id: int | None = None,
    claim_email: str | None = None,
) -> Offer | None:
    """The offer a rolled-over pass moves on to: the earliest one still usable, by
    anyone (active, not ended, under its total cap) and by ``member_id``, who must hold no
    coupon of it yet. A coupon is the member's whole allowance of an offer: used up, it
    is "one per customer" spent; still held, a second copy would double its uses; voided,
    the merchant took it back. A flyer customer (``claim_email``) is held to the same."""
    query = (
        select(Offer)
        .where(
            Offer.active.is_(True),
            Offer.id != after.id,
            or_(Offer.valid_until.is_(None), Offer.valid_until > now),
            or_(Offer.total_cap.is_(None), Offer.redeemed_count < Offer.total_cap),
        )
        .order_by(Offer.valid_from.is_(None), Offer.valid_from, Offer.id)
    )
    if merchant_program_id is not None:
        query = query.where(
            or_(Offer.program_id == merchant_program_id, Offer.program_id.is_(None))
        )
    if member_id is not None:
        query = query.where(
            Offer.id.not_in(select(Coupon.offer_id).where(Coupon.member_id == member_id))
        )
    if claim_email is not None:
        query = query.where(
            Offer.id.not_in(select(Coupon.offer_id).where(Coupon.claim_email == claim_email))
        )
    return session.scalars(query.limit(1)).first()


def _roll_over(
    session: Session, settings: Settings, pass_row: Pass, used: Offer, now: datetime
) -> Coupon | None:
    """In an offers program, a used-up coupon's pass moves on to the next offer, so the
    wallet channel stays alive instead of becoming a dead card."""
    program = session.get(Program, pass_row.program_id) if pass_row.program_id else None
    if program is None or program.kind != ProgramKind.OFFERS:
        return None
    if not (program.rules or {}).get("rollover", True):
        return None
    # A flyer pass has no member: its customer is the email its coupon was claimed with,
    # which the next coupon carries on (a second claim of that offer finds this pass).
    current = session.get(Coupon, pass_row.coupon_id) if pass_row.coupon_id else None
    claim_email = current.claim_email if current is not None else None
    offer = next_offer(
        session, program.id, used, now, member_id=pass_row.member_id, claim_email=claim_email
    )
    if offer is None:
        return None
    coupon = Coupon(
        merchant_id=pass_row.merchant_id,
        offer_id=offer.id,
        member_id=pass_row.member_id,
        claim_email=claim_email,
    )
    if claim_email is None:
        session.add(coupon)
        session.flush()
    else:
        try:
            # The customer may be claiming that offer from its flyer at this moment: the
            # unique key refuses one of the two, and the redemption must not fail for it.
            with session.begin_nested():
                session.add(coupon)
                session.flush()
        except IntegrityError:
            return None  # the pass stays on the used coupon; the claim has its own pass
    pass_row.coupon_id = coupon.id
    return coupon


def void_coupon(session: Session, settings: Settings, coupon: Coupon) -> None:
    """The coupon can no longer be used, by its barcode or by its id, and its pass shows
    as void in the wallet. Voiding the coupon's pass voids the coupon: they are one."""
    coupon.status = "void"
    for pass_row in session.scalars(
        select(Pass).where(Pass.coupon_id == coupon.id, Pass.status != PassStatus.VOIDED)
    ):
        set_status(session, pass_row, PassStatus.VOIDED, settings)


def check_issuable(offer: Offer, now: datetime) -> None:
    """Whether a new coupon of ``offer`` could ever be used. A coupon for an offer that
    starts later is fine (assigned ahead of a campaign); one the till would refuse on
    every scan is not: it would sit in the wallet looking valid.

    :raise errors.CouponExpired: the offer is inactive or has ended.
    :raise errors.OfferCapReached: the offer's total cap is used up.
    """
    if not offer.active:
        raise errors.CouponExpired(f"offer {offer.slug!r} is not active")
    if offer.valid_until is not None and offer.valid_until <= now:
        raise errors.CouponExpired(f"offer {offer.slug!r} has ended")
    if offer.total_cap is not None and offer.redeemed_count >= offer.total_cap:
        raise errors.OfferCapReached(f"offer {offer.slug!r} reached its cap")


def issue_coupon(
    session: Session,
    settings: Settings,
    offer: Offer,
    *,
    member_id: int | None = None,
    claim_email: str | None = None,
) -> tuple[Coupon, Pass]:
    """A coupon with its own pass (a flyer coupon when there is no member: claim it
    through :func:`claim_coupon`, which keeps it to one per customer).

    :raise errors.CouponExpired, errors.OfferCapReached: see :func:`check_issuable`; every
        path that issues (admin, API, CRM, flyer) keeps the same rule.
    """
    check_issuable(offer, utcnow())
    coupon = Coupon(
        merchant_id=offer.merchant_id,
        offer_id=offer.id,
        member_id=member_id,
        claim_email=claim_email,
    )
    session.add(coupon)
    session.flush()
    program = session.get(Program, offer.program_id) if offer.program_id else None
    pass_row = issue_pass(
        session,
        settings,
        merchant_id=offer.merchant_id,
        template="coupon",
        program_id=program.id if program else None,
        coupon_id=coupon.id,
        member_id=member_id,
    )
    if member_id is not None:
        # On Google the coupon shows on the member's loyalty card as a linked offer: the
        # card's sync inserts the offer object and links it (walletpass.google.links).
        queue_google_sync(
            session,
            settings,
            (Pass.member_id == member_id)
            & Pass.coupon_id.is_(None)
            & (Pass.status == PassStatus.ACTIVE),
        )
    return coupon, pass_row


# Loose on purpose (as the join form): catching typos, not enforcing RFC 5322.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")


def claim_email(raw: str) -> str:
    """The customer a flyer claim is for: their email, as it is stored and compared
    (trimmed, lower-cased: ``Ana@Example.test`` is ``ana@example.test``).

    :raise errors.ValidationFailed: it is not an email address (the detail says so in
        words a customer reads; the address itself is never put in it).
    """
    email = normalize_email(raw)
    if email is None:
        raise errors.ValidationFailed("Please give your email address.")
    if len(email) > 320 or not _EMAIL.match(email):
        raise errors.ValidationFailed("This does not look like an email address.")
    return email


@dataclass(frozen=True)
class Claim:
    """A customer's coupon of an offer. ``pass_row`` is None once the coupon was used up
    and its pass moved on to another offer (an offers program's rollover)."""

    coupon: Coupon
    pass_row: Pass | None
    created: bool


def find_claim(session: Session, offer: Offer, email: str) -> Claim | None:
    """The coupon of ``offer`` claimed with ``email`` (see :func:`claim_email`), if any."""
    coupon = session.scalars(
        select(Coupon).where(Coupon.offer_id == offer.id, Coupon.claim_email == email)
    ).one_or_none()
    if coupon is None:
        return None
    pass_row = session.scalars(
        select(Pass).where(Pass.coupon_id == coupon.id).order_by(Pass.id).limit(1)
    ).first()
    return Claim(coupon, pass_row, created=False)


def claim_coupon(session: Session, settings: Settings, offer: Offer, email: str) -> Claim:
    """A flyer coupon of ``offer`` for the customer ``email``: one per offer per customer,
    whichever browser asks. A customer who claimed it before gets that coupon back
    (used or voided included: "one per customer" was spent or taken back), also when
    two claims run at once: the database's unique key lets one insert in, and the other
    answers with it. The coupon has no member, even when a member has this email: the
    address is not confirmed, and a member's coupon would show the member's name and
    balance to whoever typed it (README).

    :raise errors.CouponExpired, errors.OfferCapReached: a new coupon could not be used
        (:func:`check_issuable`); an existing one is given back all the same.
    """
    found = find_claim(session, offer, email)
    if found is not None:
        return found
    try:
        # A savepoint: only this claim is undone when a simultaneous one won, not the
        # caller's unit of work. PostgreSQL makes this insert wait for the winner's commit.
        with session.begin_nested():
            coupon, pass_row = issue_coupon(session, settings, offer, claim_email=email)
    except IntegrityError:
        winner = find_claim(session, offer, email)
        if winner is None:
            raise
        return winner
    return Claim(coupon, pass_row, created=True)
