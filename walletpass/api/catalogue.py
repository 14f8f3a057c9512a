"""/rewards, /offers and /coupons: what members can redeem."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Context, Routes, paginate
from walletpass.api.members import get_member, pass_links
from walletpass.api.resources_schemas import (
    CouponDetail,
    CouponIn,
    CouponPage,
    CouponQuery,
    CouponRedeemed,
    OfferIn,
    OfferOut,
    OfferPage,
    OfferPatch,
    OfferQuery,
    RewardDetail,
    RewardIn,
    RewardPage,
    RewardPatch,
    RewardQuery,
    stored_texts,
)
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.i18n.merchant_texts import replaced
from walletpass.loyalty import rules
from walletpass.loyalty.memberships import check_in_force
from walletpass.loyalty.models import Program, Reward
from walletpass.loyalty.programs import program_rules
from walletpass.loyalty.reward_windows import reward_saved
from walletpass.loyalty.texts import set_reward_texts
from walletpass.offers import services as offers
from walletpass.offers.lifecycle import OfferShown, offer_saved
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.texts import set_offer_texts
from walletpass.passes.models import Pass

READERS = ("till", "crm")
COUPON_PROBLEMS = (
    errors.CouponExpired,
    errors.CouponUsedUp,
    errors.OfferCapReached,
    errors.MembershipInactive,
)
routes = Routes()


def _unknown(field: str, what: str) -> errors.WalletpassError:
    return errors.ValidationFailed(
        f"no such {what}", errors=[{"field": field, "message": f"unknown {what}"}]
    )


def _check_dates(valid_from: Any, valid_until: Any) -> None:
    if valid_from and valid_until and valid_until <= valid_from:
        raise errors.ValidationFailed(
            "valid_until must be after valid_from",
            errors=[{"field": "body.valid_until", "message": "must be after valid_from"}],
        )


def _check_tier(program: Program, tier: str | None) -> None:
    if tier is None:
        return
    parsed = program_rules(program)
    names = [level.name for level in parsed.levels] if isinstance(parsed, rules.TiersRules) else []
    if tier not in names:
        raise errors.ValidationFailed(
            f"the program has no tier {tier!r}",
            errors=[{"field": "body.min_tier", "message": f"expected one of {names}"}],
        )


# --- rewards ---------------------------------------------------------------------------


def _reward(session: Session, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id)
    if reward is None:
        raise errors.NotFound(f"no reward {reward_id}")
    return reward


def _reward_out(reward: Reward) -> RewardDetail:
    return RewardDetail.model_validate(reward, from_attributes=True)


def _catalogue_changed(ctx: Context, reward: Reward) -> None:
    # Members' cards list what they can redeem now: a new, changed or retired reward
    # changes that list, so the program's passes are fetched again, and again when the
    # reward's dates come.
    reward_saved(ctx.session, ctx.settings, reward)


@routes.operation(
    "GET", "/rewards", scopes=READERS, query=RewardQuery, response=RewardPage, tag="rewards"
)
def list_rewards(ctx: Context) -> RewardPage:
    """List catalogue rewards."""
    q: RewardQuery = ctx.query
    stmt = select(Reward)
    if q.program_id is not None:
        stmt = stmt.where(Reward.program_id == q.program_id)
    if q.active is not None:
        stmt = stmt.where(Reward.active.is_(q.active))
    rows, cursor = paginate(ctx.session, stmt, Reward.id, limit=q.limit, cursor=q.cursor)
    return RewardPage(data=[_reward_out(r) for r in rows], next_cursor=cursor)


@routes.operation(
    "POST",
    "/rewards",
    scopes=(),
    body=RewardIn,
    response=RewardDetail,
    status=201,
    tag="rewards",
)
def create_reward(ctx: Context) -> RewardDetail:
    """Add a reward to a program's catalogue (admin)."""
    body: RewardIn = ctx.body
    program = ctx.session.get(Program, body.program_id)
    if program is None:
        raise _unknown("body.program_id", "program")
    _check_tier(program, body.min_tier)
    reward = Reward(
        merchant_id=ctx.merchant_id,
        **body.model_dump(exclude={"translations"}),
        translations=replaced({}, stored_texts(body.translations)),
    )
    ctx.session.add(reward)
    ctx.session.flush()
    _catalogue_changed(ctx, reward)
    return _reward_out(reward)


@routes.operation(
    "GET", "/rewards/<int:reward_id>", scopes=READERS, response=RewardDetail, tag="rewards"
)
def get_reward(ctx: Context) -> RewardDetail:
    """Get a reward."""
    return _reward_out(_reward(ctx.session, ctx.path["reward_id"]))


@routes.operation(
    "PATCH",
    "/rewards/<int:reward_id>",
    scopes=(),
    body=RewardPatch,
    response=RewardDetail,
    tag="rewards",
)
def update_reward(ctx: Context) -> RewardDetail:
    """Change a reward (admin). A field left out is unchanged; a null clears it."""
    reward = _reward(ctx.session, ctx.path["reward_id"])
    changes = ctx.body.model_dump(exclude_unset=True, exclude={"translations"})
    for required in ("name", "cost_points", "active", "description"):
        if changes.get(required, "") is None:
            del changes[required]
    if "min_tier" in changes:
        program = ctx.session.get(Program, reward.program_id)
        assert program is not None
        _check_tier(program, changes["min_tier"])
    _check_dates(
        changes.get("valid_from", reward.valid_from),
        changes.get("valid_until", reward.valid_until),
    )
    shown = {name: getattr(reward, name) for name in changes}
    for name, value in changes.items():
        setattr(reward, name, value)
    ctx.session.flush()
    if any(getattr(reward, name) != before for name, before in shown.items()):
        _catalogue_changed(ctx, reward)
        if ctx.body.translations is not None:  # every card was marked changed
            reward.translations = replaced(reward.translations, stored_texts(ctx.body.translations))
    elif ctx.body.translations is not None:
        set_reward_texts(ctx.session, ctx.settings, reward, stored_texts(ctx.body.translations))
    return _reward_out(reward)


@routes.operation("DELETE", "/rewards/<int:reward_id>", scopes=(), status=204, tag="rewards")
def delete_reward(ctx: Context) -> None:
    """Retire a reward (admin): it is deactivated; past redemptions keep pointing at it."""
    reward = _reward(ctx.session, ctx.path["reward_id"])
    if reward.active:
        reward.active = False
        ctx.session.flush()
        _catalogue_changed(ctx, reward)
    return None


# --- offers ----------------------------------------------------------------------------


def _offer(session: Session, offer_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise errors.NotFound(f"no offer {offer_id}")
    return offer


def _offer_out(offer: Offer) -> OfferOut:
    return OfferOut.model_validate(offer, from_attributes=True)


@routes.operation(
    "GET", "/offers", scopes=READERS, query=OfferQuery, response=OfferPage, tag="offers"
)
def list_offers(ctx: Context) -> OfferPage:
    """List offers."""
    q: OfferQuery = ctx.query
    stmt = select(Offer)
    if q.program_id is not None:
        stmt = stmt.where(Offer.program_id == q.program_id)
    if q.active is not None:
        stmt = stmt.where(Offer.active.is_(q.active))
    rows, cursor = paginate(ctx.session, stmt, Offer.id, limit=q.limit, cursor=q.cursor)
    return OfferPage(data=[_offer_out(o) for o in rows], next_cursor=cursor)


@routes.operation(
    "POST",
    "/offers",
    scopes=(),
    body=OfferIn,
    response=OfferOut,
    status=201,
    tag="offers",
    problems=(errors.Conflict,),
)
def create_offer(ctx: Context) -> OfferOut:
    """Create an offer (admin); coupons are then issued from it."""
    body: OfferIn = ctx.body
    if body.program_id is not None and ctx.session.get(Program, body.program_id) is None:
        raise _unknown("body.program_id", "program")
    taken = select(Offer.id).where(Offer.slug == body.slug)
    if ctx.session.scalar(taken.execution_options(all_merchants=True)) is not None:
        raise errors.Conflict(f"the slug {body.slug!r} is taken")
    offer = Offer(
        merchant_id=ctx.merchant_id,
        **body.model_dump(mode="python", exclude={"translations"}),
        translations=replaced({}, stored_texts(body.translations)),
    )
    offer.discount = body.discount.model_dump(mode="json")
    try:
        with ctx.session.begin_nested():
            ctx.session.add(offer)
            ctx.session.flush()
    except IntegrityError:
        raise errors.Conflict(f"the slug {body.slug!r} is taken") from None
    offer_saved(ctx.session, ctx.settings, offer)
    return _offer_out(offer)


@routes.operation("GET", "/offers/<int:offer_id>", scopes=READERS, response=OfferOut, tag="offers")
def get_offer(ctx: Context) -> OfferOut:
    """Get an offer."""
    return _offer_out(_offer(ctx.session, ctx.path["offer_id"]))


@routes.operation(
    "PATCH",
    "/offers/<int:offer_id>",
    scopes=(),
    body=OfferPatch,
    response=OfferOut,
    tag="offers",
)
def update_offer(ctx: Context) -> OfferOut:
    """Change an offer (admin); its coupon passes show the change. A null clears a
    date or the cap; other fields left out or null are unchanged."""
    offer = _offer(ctx.session, ctx.path["offer_id"])
    body: OfferPatch = ctx.body
    nullable = {"valid_from", "valid_until", "total_cap"}
    changes: dict[str, Any] = {
        k: v
        for k, v in body.model_dump(exclude_unset=True, exclude={"translations"}).items()
        if v is not None or k in nullable
    }
    if body.discount is not None:
        changes["discount"] = body.discount.model_dump(mode="json")
    _check_dates(
        changes.get("valid_from", offer.valid_from),
        changes.get("valid_until", offer.valid_until),
    )
    before = OfferShown.of(offer)
    for name, value in changes.items():
        setattr(offer, name, value)
    if changes:
        offer_saved(ctx.session, ctx.settings, offer, before)
        if body.translations is not None:  # every card showing it was marked changed
            offer.translations = replaced(offer.translations, stored_texts(body.translations))
    elif body.translations is not None:
        set_offer_texts(ctx.session, ctx.settings, offer, stored_texts(body.translations))
    return _offer_out(offer)


@routes.operation("DELETE", "/offers/<int:offer_id>", scopes=(), status=204, tag="offers")
def delete_offer(ctx: Context) -> None:
    """End an offer (admin): deactivated, so its coupons can no longer be used."""
    offer = _offer(ctx.session, ctx.path["offer_id"])
    if offer.active:
        offer.active = False
        offer_saved(ctx.session, ctx.settings, offer)
    return None


# --- coupons ---------------------------------------------------------------------------


def _coupon(session: Session, coupon_id: int) -> Coupon:
    coupon = session.get(Coupon, coupon_id)
    if coupon is None:
        raise errors.NotFound(f"no coupon {coupon_id}")
    return coupon


def coupon_details(
    session: Session, settings: Settings, coupons: list[Coupon]
) -> list[CouponDetail]:
    if not coupons:
        return []
    offer_rows = session.scalars(select(Offer).where(Offer.id.in_({c.offer_id for c in coupons})))
    offers_by_id = {o.id: o for o in offer_rows}
    passes: dict[int, list[Pass]] = {}
    for pass_row in session.scalars(
        select(Pass).where(Pass.coupon_id.in_([c.id for c in coupons])).order_by(Pass.id)
    ):
        assert pass_row.coupon_id is not None
        passes.setdefault(pass_row.coupon_id, []).append(pass_row)
    now = utcnow()
    out = []
    for coupon in coupons:
        offer = offers_by_id[coupon.offer_id]
        out.append(
            CouponDetail(
                id=coupon.id,
                offer_id=offer.id,
                member_id=coupon.member_id,
                status=coupon.status,
                uses=coupon.uses,
                uses_left=max(offer.uses_per_coupon - coupon.uses, 0),
                usable_now=offers.coupon_problem(offer, coupon, now) is None,
                created_at=coupon.created_at,
                last_used_at=coupon.last_used_at,
                passes=[pass_links(settings, p) for p in passes.get(coupon.id, [])],
            )
        )
    return out


@routes.operation(
    "GET", "/coupons", scopes=READERS, query=CouponQuery, response=CouponPage, tag="coupons"
)
def list_coupons(ctx: Context) -> CouponPage:
    """List coupons (filter by offer, member or status)."""
    q: CouponQuery = ctx.query
    stmt = select(Coupon)
    if q.offer_id is not None:
        stmt = stmt.where(Coupon.offer_id == q.offer_id)
    if q.member_id is not None:
        stmt = stmt.where(Coupon.member_id == q.member_id)
    if q.status is not None:
        stmt = stmt.where(Coupon.status == q.status)
    rows, cursor = paginate(ctx.session, stmt, Coupon.id, limit=q.limit, cursor=q.cursor)
    return CouponPage(data=coupon_details(ctx.session, ctx.settings, rows), next_cursor=cursor)


@routes.operation(
    "POST",
    "/coupons",
    scopes=("crm",),
    body=CouponIn,
    response=CouponDetail,
    status=201,
    tag="coupons",
)
def create_coupon(ctx: Context) -> CouponDetail:
    """Issue a coupon with its own pass (to a member, or anonymous for a flyer)."""
    body: CouponIn = ctx.body
    offer = ctx.session.get(Offer, body.offer_id)
    if offer is None:
        raise _unknown("body.offer_id", "offer")
    try:
        offers.check_issuable(offer, utcnow())
    except (errors.CouponExpired, errors.OfferCapReached) as exc:
        raise errors.ValidationFailed(
            exc.detail, errors=[{"field": "body.offer_id", "message": exc.detail}]
        ) from None
    if body.member_id is not None:
        try:
            get_member(ctx.session, body.member_id)
        except errors.NotFound:
            raise _unknown("body.member_id", "member") from None
    coupon, _pass = offers.issue_coupon(ctx.session, ctx.settings, offer, member_id=body.member_id)
    return coupon_details(ctx.session, ctx.settings, [coupon])[0]


@routes.operation(
    "GET", "/coupons/<int:coupon_id>", scopes=READERS, response=CouponDetail, tag="coupons"
)
def get_coupon(ctx: Context) -> CouponDetail:
    """Get a coupon with its pass links."""
    coupon = _coupon(ctx.session, ctx.path["coupon_id"])
    return coupon_details(ctx.session, ctx.settings, [coupon])[0]


@routes.operation(
    "POST",
    "/coupons/<int:coupon_id>/redeem",
    scopes=READERS,
    response=CouponRedeemed,
    tag="coupons",
    problems=COUPON_PROBLEMS,
)
def redeem_coupon(ctx: Context) -> CouponRedeemed:
    """Use a coupon once (send an Idempotency-Key: a retry must not use it twice)."""
    coupon = _coupon(ctx.session, ctx.path["coupon_id"])
    check_in_force(ctx.session, coupon.member_id)
    coupon, _offer_row, rolled = offers.redeem_coupon(ctx.session, ctx.settings, coupon.id)
    return CouponRedeemed(
        coupon=coupon_details(ctx.session, ctx.settings, [coupon])[0],
        rolled_over_to_coupon=rolled.id if rolled else None,
    )


@routes.operation("DELETE", "/coupons/<int:coupon_id>", scopes=("crm",), status=204, tag="coupons")
def void_coupon(ctx: Context) -> None:
    """Void a coupon: it can no longer be used and its pass shows as void."""
    offers.void_coupon(ctx.session, ctx.settings, _coupon(ctx.session, ctx.path["coupon_id"]))
    return None
