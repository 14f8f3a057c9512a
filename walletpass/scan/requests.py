"""A scan as a till sends it and the answer it gets, for both tills: the JSON API's
``POST /api/v1/scans`` and the till page's ``/till/api/scan``. Both build the scan
service's request from :class:`ScanIn`, log a refused scan, undo and answer (:class:`ScanOut`,
:class:`UndoOut`) through the functions here, so the two cannot drift apart.

The models are pydantic: the API validates with them and its OpenAPI document describes
them; ``Strict``, ``Money``, ``LineIn`` and ``BalanceOut`` are the API's resource schemas'
building blocks too. Flask-free.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.loyalty import earning, memberships, rules, tiers
from walletpass.loyalty.ledger import Actor
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.loyalty.programs import membership_standing, program_rules
from walletpass.offers.models import Coupon, Offer
from walletpass.offers.services import coupon_problem
from walletpass.passes.models import PassStatus
from walletpass.scan import services as scan_services
from walletpass.tenancy.models import Merchant

Money = Decimal


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(Strict):
    amount: Money = Field(ge=0, max_digits=12, decimal_places=2)
    category: str | None = Field(None, max_length=64)


class ScanIn(Strict):
    """What the till sends: the scanned code and what to do with it."""

    code: str = Field(min_length=1, max_length=200, description="What the scanner read.")
    action: Literal["lookup", "purchase", "stamp", "redeem_reward", "redeem_coupon", "refund"] = (
        "lookup"
    )
    amount: Money | None = Field(
        None,
        ge=0,
        max_digits=12,
        decimal_places=2,
        description='Purchase or refund amount, e.g. "12.50"; whole units in a currency '
        'without a minor unit (TWD, JPY: "12.5" is refused, 422).',
    )
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    receipt_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="The till's receipt id: a retried purchase with the same id counts once.",
    )
    store: str | None = Field(None, max_length=64, description="Store code.")
    reward_id: int | None = Field(None, ge=1)
    redeem_points: int = Field(
        0, ge=0, le=10_000_000, description="Points paying part of a purchase (partial redemption)."
    )
    stamps: int = Field(1, ge=1, le=50, description="Stamps to add with action=stamp.")
    refund_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Distinguishes several partial refunds of one receipt.",
    )
    lines: list[LineIn] | None = Field(
        None, max_length=500, description="Basket lines, for category multipliers."
    )


class MembershipOut(BaseModel):
    """A membership card's standing: what the till checks before giving member benefits."""

    status: Literal["pending", "active", "lapsed"] = Field(
        description="pending: a paid membership never paid (no benefits until its payment "
        "is recorded); active; lapsed: past valid_until, renewed by a payment from then."
    )
    valid_until: datetime | None
    ends_soon: bool = Field(description="Active, within the program's reminder_days of its end.")
    paid: bool
    price: Decimal | None = Field(description="What a payment must be, for a paid membership.")
    currency: str
    validity_months: int
    benefits: str


class MemberOut(BaseModel):
    id: int
    name: str
    program: str
    program_kind: str
    tier: str | None
    tier_discount_percent: Decimal | None = None
    points: int | None
    stamps: int | None
    stamps_goal: int | None = None
    membership_valid_until: datetime | None = None
    membership: MembershipOut | None = None


class CouponOut(BaseModel):
    id: int
    offer_id: int
    title: str
    discount: dict[str, object]
    uses_left: int
    valid_from: datetime | None
    valid_until: datetime | None
    status: str
    usable_now: bool


class RewardOut(BaseModel):
    id: int
    name: str
    kind: str
    cost: int


class Redeemable(BaseModel):
    rewards: list[RewardOut]
    coupons: list[CouponOut]


class BalanceOut(BaseModel):
    points: int | None
    stamps: int | None


class ScanOut(BaseModel):
    """The till's answer: who or what was scanned, what changed, what can be redeemed now."""

    scan_id: int
    action: str
    pass_serial: str
    kind: Literal["member", "coupon"]
    member: MemberOut | None
    coupon: CouponOut | None
    balance: BalanceOut
    points_delta: int
    stamps_delta: int
    discount: Decimal | None = None
    redemption_code: str | None = None
    rewards_reached: list[str] = []
    rolled_over_to_coupon: int | None = None
    replayed: bool = False
    redeemable: Redeemable


class MembershipPaymentIn(Strict):
    """The till page's payment of a membership card it looked up."""

    code: str = Field(min_length=1, max_length=200, description="The card's scanned code.")
    amount: Money | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    receipt_id: str = Field(
        min_length=1,
        max_length=128,
        description="Made once per payment: a retried payment with the same id renews once.",
    )


class MembershipPaymentOut(BaseModel):
    member_id: int
    membership: MembershipOut
    replayed: bool


class UndoOut(BaseModel):
    scan_id: int
    undone_at: datetime
    balance: BalanceOut


# -- what both tills do with them ---------------------------------------------------------


def scan_request(scan_in: ScanIn, code: str | None = None) -> scan_services.ScanRequest:
    """The scan service's request for what the till sent.

    :param code: the code to scan instead of the one sent (the till page redeems a
        member's coupon through the coupon's own pass).
    """
    return scan_services.ScanRequest(
        code=scan_in.code if code is None else code,
        action=scan_in.action,
        amount=scan_in.amount,
        currency=scan_in.currency,
        receipt_id=scan_in.receipt_id,
        reward_id=scan_in.reward_id,
        redeem_points=scan_in.redeem_points,
        stamps=scan_in.stamps,
        refund_id=scan_in.refund_id,
        lines=[earning.Line(line.amount, line.category) for line in scan_in.lines]
        if scan_in.lines
        else None,
    )


def record_refused(
    session: Session,
    scan_in: ScanIn,
    exc: errors.WalletpassError,
    actor: Actor,
    *,
    merchant_id: int,
    api_key_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """Log a refused scan (for staff anomaly reports), in the fresh transaction the
    caller opened after the scan's own one rolled back."""
    scan_services.record_failed_scan(
        session,
        scan_in.code,
        scan_in.action,
        exc,
        actor,
        merchant_id=merchant_id,
        api_key_id=api_key_id,
        user_id=user_id,
        receipt_id=scan_in.receipt_id,
        amount=scan_in.amount,
    )


def undo(session: Session, settings: Settings, scan_id: int, actor: Actor) -> UndoOut:
    """Undo a scan made by mistake and answer with the balance after it."""
    scan = scan_services.undo_scan(session, settings, scan_id, actor)
    member = session.get(Member, scan.member_id) if scan.member_id else None
    program = session.get(Program, member.program_id) if member else None
    assert scan.undone_at is not None
    return UndoOut(scan_id=scan.id, undone_at=scan.undone_at, balance=balance_of(member, program))


def pay_membership(
    session: Session, settings: Settings, pay_in: MembershipPaymentIn, actor: Actor
) -> MembershipPaymentOut:
    """Record a membership's payment taken at the counter, for the card scanned: keyed
    on the receipt id as the API's ``membership_payment`` transaction is, so the same
    receipt renews once whichever way it is sent."""
    pass_row = scan_services.resolve(session, pay_in.code)
    if pass_row.status == PassStatus.VOIDED:
        raise errors.PassInactive("this card was withdrawn")
    member = session.get(Member, pass_row.member_id) if pass_row.member_id else None
    program = session.get(Program, member.program_id) if member else None
    if member is None or program is None or program.kind != ProgramKind.MEMBERSHIP:
        raise errors.ActionNotAllowed("a payment is recorded on a membership card")
    change = memberships.renew_membership(
        session,
        settings,
        member,
        key=f"membership:{pay_in.receipt_id}",
        actor=actor,
        amount=pay_in.amount,
        receipt_id=pay_in.receipt_id,
    )
    shown = membership_out(session, member, program)
    assert shown is not None
    return MembershipPaymentOut(member_id=member.id, membership=shown, replayed=change.replayed)


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
        membership=membership_out(session, member, program)
        if program.kind == ProgramKind.MEMBERSHIP
        else None,
    )


def membership_out(session: Session, member: Member, program: Program) -> MembershipOut | None:
    standing = membership_standing(program, member)
    if standing is None:
        return None
    merchant = session.get(Merchant, member.merchant_id)
    assert merchant is not None
    return MembershipOut(
        status=standing.state.value,
        valid_until=standing.valid_until,
        ends_soon=standing.ends_soon,
        paid=standing.paid,
        price=standing.price,
        currency=merchant.currency,
        validity_months=standing.validity_months,
        benefits=standing.benefits,
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
