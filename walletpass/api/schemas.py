"""Request and response schemas of the JSON API, declared once (OpenAPI is built from them)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
        description='Purchase or refund amount, e.g. "12.50".',
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


class UndoOut(BaseModel):
    scan_id: int
    undone_at: datetime
    balance: BalanceOut
