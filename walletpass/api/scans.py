"""POST /api/v1/scans and undo: the till's endpoint."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Api, Context
from walletpass.api.schemas import (
    BalanceOut,
    CouponOut,
    MemberOut,
    Redeemable,
    RewardOut,
    ScanIn,
    ScanOut,
    UndoOut,
)
from walletpass.db import utcnow
from walletpass.loyalty import earning, rules, tiers
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.services import Actor, program_rules
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import coupon_problem
from walletpass.scan import services as scan_services
from walletpass.tenancy.apikeys import AuthenticatedKey
from walletpass.tenancy.models import Store

SCAN_PROBLEMS = (
    errors.UnknownCode,
    errors.PassInactive,
    errors.InsufficientPoints,
    errors.RewardUnavailable,
    errors.UnknownReward,
    errors.CouponExpired,
    errors.CouponUsedUp,
    errors.OfferCapReached,
    errors.ActionNotAllowed,
    errors.DuplicateReceipt,
    errors.UnknownReceipt,
    errors.Conflict,
)


def actor_for(session: Session, key: AuthenticatedKey, store_code: str | None) -> Actor:
    store_id = key.store_id
    if store_code:
        store = session.scalars(select(Store).where(Store.code == store_code)).one_or_none()
        if store is None:
            raise errors.ValidationFailed(
                f"no store {store_code!r}", errors=[{"field": "body.store", "message": "unknown"}]
            )
        if key.store_id is not None and store.id != key.store_id:
            raise errors.Forbidden("this till key belongs to another store")
        store_id = store.id
    return Actor("api_key", str(key.id), store_id)


def member_out(session: Session, member: Member, program: Program) -> MemberOut:
    parsed = program_rules(program)
    discount = None
    if isinstance(parsed, rules.TiersRules) and member.tier:
        level = tiers.level_named(parsed, member.tier)
        discount = level.discount_percent if level else None
    is_stamps = program.kind == ProgramKind.STAMPS
    has_points = program.kind in (ProgramKind.POINTS, ProgramKind.TIERS)
    return MemberOut(
        id=member.id,
        name=member.name,
        program=program.slug,
        program_kind=program.kind,
        tier=member.tier,
        tier_discount_percent=discount,
        points=member.points_balance if has_points else None,
        stamps=member.stamps_balance if is_stamps else None,
        stamps_goal=parsed.goal if isinstance(parsed, rules.StampsRules) else None,
        membership_valid_until=member.membership_valid_until,
    )


def coupon_out(coupon: Coupon, offer: Offer) -> CouponOut:
    return CouponOut(
        id=coupon.id,
        offer_id=offer.id,
        title=offer.title,
        discount=offer.discount or {},
        uses_left=max(offer.uses_per_coupon - coupon.uses, 0),
        valid_from=offer.valid_from,
        valid_until=offer.valid_until,
        status=coupon.status,
        usable_now=coupon_problem(offer, coupon, utcnow()) is None,
    )


def balance_of(member: Member | None, program: Program | None) -> BalanceOut:
    if member is None or program is None:
        return BalanceOut(points=None, stamps=None)
    if program.kind == ProgramKind.STAMPS:
        return BalanceOut(points=None, stamps=member.stamps_balance)
    if program.kind in (ProgramKind.POINTS, ProgramKind.TIERS):
        return BalanceOut(points=member.points_balance, stamps=None)
    return BalanceOut(points=None, stamps=None)


def register(api: Api) -> None:
    def record_failure(
        session: Session, key: AuthenticatedKey, body: Any, exc: errors.WalletpassError
    ) -> None:
        if not isinstance(body, ScanIn):
            return
        actor = Actor("api_key", str(key.id), key.store_id)
        scan_services.record_failed_scan(
            session,
            body.code,
            body.action,
            exc,
            actor,
            merchant_id=key.merchant_id,
            api_key_id=key.id,
            user_id=None,
            receipt_id=body.receipt_id,
            amount=body.amount,
        )

    @api.operation(
        "POST",
        "/scans",
        scopes=("till",),
        body=ScanIn,
        response=ScanOut,
        tag="till",
        problems=SCAN_PROBLEMS,
        on_error=record_failure,
    )
    def create_scan(ctx: Context) -> ScanOut:
        """Record a scan at the till: look up, purchase, stamp, redeem, refund."""
        body: ScanIn = ctx.body
        actor = actor_for(ctx.session, ctx.api_key, body.store)
        req = scan_services.ScanRequest(
            code=body.code,
            action=body.action,
            amount=body.amount,
            currency=body.currency,
            receipt_id=body.receipt_id,
            reward_id=body.reward_id,
            redeem_points=body.redeem_points,
            stamps=body.stamps,
            refund_id=body.refund_id,
            lines=[earning.Line(line.amount, line.category) for line in body.lines]
            if body.lines
            else None,
        )
        out = scan_services.apply_scan(
            ctx.session, ctx.settings, req, actor, api_key_id=ctx.api_key.id
        )
        return scan_out(ctx.session, out)

    @api.operation(
        "POST",
        "/scans/<int:scan_id>/undo",
        scopes=("till",),
        response=UndoOut,
        tag="till",
        problems=(errors.NotFound, errors.UndoExpired),
    )
    def undo_scan(ctx: Context) -> UndoOut:
        """Undo a scan made by mistake (within 5 minutes)."""
        actor = Actor("api_key", str(ctx.api_key.id), ctx.api_key.store_id)
        scan = scan_services.undo_scan(ctx.session, ctx.settings, ctx.path["scan_id"], actor)
        member = ctx.session.get(Member, scan.member_id) if scan.member_id else None
        program = ctx.session.get(Program, member.program_id) if member else None
        assert scan.undone_at is not None
        return UndoOut(
            scan_id=scan.id, undone_at=scan.undone_at, balance=balance_of(member, program)
        )


def scan_out(session: Session, out: scan_services.ScanOutcome) -> ScanOut:
    change = out.change
    return ScanOut(
        scan_id=out.scan.id,
        action=out.scan.action,
        pass_serial=out.pass_row.serial,
        kind="member" if out.member is not None else "coupon",
        member=member_out(session, out.member, out.program)
        if out.member is not None and out.program is not None
        else None,
        coupon=coupon_out(out.coupon, out.offer)
        if out.coupon is not None and out.offer is not None
        else None,
        balance=balance_of(out.member, out.program),
        points_delta=change.points,
        stamps_delta=change.stamps,
        discount=change.discount,
        redemption_code=change.redemption_code,
        rewards_reached=change.rewards_reached,
        rolled_over_to_coupon=change.rolled_over_to,
        replayed=change.replayed,
        redeemable=Redeemable(
            rewards=[
                RewardOut(id=r.id, name=r.name, kind=r.kind, cost=r.cost_points)
                for r in out.redeemable_rewards
            ],
            coupons=[coupon_out(c, o) for c, o in out.coupons],
        ),
    )


__all__ = ["Decimal", "register"]
