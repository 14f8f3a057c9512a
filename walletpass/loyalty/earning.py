"""Earning and spending arithmetic: points per purchase, stamps, bonuses, redemption, refunds.

Money is ``Decimal`` (never float), points and stamps are ``int``. Rounding happens once per
purchase, at the end, so that a multiplier never multiplies an already rounded number.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from walletpass.loyalty.rules import (
    WEEKDAYS,
    CategoryMultiplier,
    PointsRules,
    StampsRules,
    WindowMultiplier,
    parse_time,
)

__all__ = [
    "EarnResult",
    "Line",
    "RedemptionNotAllowed",
    "birthday_bonus_due",
    "complete_stamp_card",
    "discount_for_points",
    "max_points_for_purchase",
    "points_for_discount",
    "points_for_purchase",
    "referral_bonuses",
    "refund_points",
    "stamp_rewards_reached",
    "stamps_for_visit",
    "welcome_bonus",
]

_CENT = Decimal("0.01")
_ONE = Decimal(1)


class RedemptionNotAllowed(ValueError):
    """The program does not let points pay part of a purchase (no ``points_to_currency``)."""


class Line(NamedTuple):
    """One receipt line: its amount and product category (None: uncategorised)."""

    amount: Decimal
    category: str | None = None


@dataclass(frozen=True)
class EarnResult:
    """Points for one purchase.

    ``base_points`` is what the purchase earns without any multiplier; ``multiplier`` is
    the effective multiplier on the whole purchase (a 2x category on half the basket is
    1.5), tier included, rounded to 4 places for display; ``applied`` names what applied;
    ``reason`` says why nothing was earned (below the minimum spend), else None.
    """

    points: int
    base_points: int
    multiplier: Decimal
    applied: list[str] = field(default_factory=list)
    reason: str | None = None


def _money(value: Decimal | int, name: str) -> Decimal:
    # A float here is a bug upstream: 0.1 + 0.2 would quietly cost a member a point.
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{name} must be finite")
    return value


def _round(value: Decimal, rounding: str) -> int:
    mode = ROUND_HALF_UP if rounding == "half_up" else ROUND_FLOOR
    return int(value.to_integral_value(rounding=mode))


def _display(value: Decimal) -> Decimal:
    value = value.quantize(Decimal("0.0001"))
    # normalize() alone would print 10 as 1E+1.
    return value.to_integral_value() if value == value.to_integral_value() else value.normalize()


def _window_applies(multiplier: WindowMultiplier, local: datetime) -> bool:
    if WEEKDAYS[local.weekday()] not in multiplier.days:
        return False
    if multiplier.valid_from and local.date() < multiplier.valid_from:
        return False
    if multiplier.valid_until and local.date() > multiplier.valid_until:
        return False
    minute = local.hour * 60 + local.minute
    return parse_time(multiplier.start) <= minute < parse_time(multiplier.end)


def _category_amounts(lines: Sequence[Line] | None, amount: Decimal) -> list[tuple[Decimal, str]]:
    """Categorised line amounts, scaled down when the lines add up to more than the total.

    Lines above the total mean a basket-level discount: it is spread pro rata over the
    lines so a category multiplier never applies to money that was not paid.
    """
    if not lines:
        return []
    # Unpacked rather than read by attribute, so that plain (amount, category) tuples work.
    amounts = [(_money(a, "line amount"), c) for a, c in lines]
    if any(a < 0 for a, _ in amounts):
        raise ValueError("line amounts must not be negative")
    total = sum((a for a, _ in amounts), Decimal(0))
    scale = amount / total if total > amount else _ONE
    return [(a * scale, c.strip().lower()) for a, c in amounts if c and c.strip()]


def points_for_purchase(
    rules: PointsRules,
    *,
    amount: Decimal,
    lines: Sequence[Line] | None = None,
    at: datetime,
    tz: str,
    tier_multiplier: Decimal = _ONE,
) -> EarnResult:
    """Points earned by one purchase.

    Order of operations: the promotional multipliers give a weighted amount (category
    factors on their lines' amounts, window factors on the whole purchase at local time in
    ``tz``; only the single best promotion unless ``stack_multipliers``, in which case
    window factors multiply each other and the category factors of each line); that is
    divided by ``amount_per_point``, multiplied by the tier multiplier, and rounded once
    (floor by default). A purchase below ``min_spend`` earns nothing.

    :param rules: points or tiers rules.
    :param amount: what the member paid, tax included, after any points discount.
    :param lines: receipt lines for category multipliers; lines not covering the whole
        amount leave the rest uncategorised.
    :param at: when the purchase happened (aware).
    :param tz: the merchant's IANA time zone, e.g. ``"Europe/Paris"``.
    :param tier_multiplier: the member's tier ``earn_multiplier`` (1 without tiers).
    :raise ValueError: negative amount, naive ``at``, unknown ``tz``, bad multiplier.
    :raise TypeError: a float amount.
    """
    amount = _money(amount, "amount")
    tier_multiplier = _money(tier_multiplier, "tier_multiplier")
    if amount < 0:
        raise ValueError("amount must not be negative; use refund_points for returns")
    if tier_multiplier <= 0:
        raise ValueError("tier_multiplier must be positive")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    try:
        local = at.astimezone(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc

    with localcontext() as ctx:
        ctx.prec = 50  # plenty for money times small factors; rounding happens once, below
        if amount < rules.min_spend:
            return EarnResult(
                points=0,
                base_points=0,
                multiplier=_ONE,
                reason=f"below the minimum spend of {rules.min_spend}",
            )
        base_points = _round(amount / rules.amount_per_point, rules.rounding)
        categorised = _category_amounts(lines, amount)

        # Best-only compares each promotion alone as (weighted amount, label); stacking
        # needs the combined window factor and the combined factor of each line instead.
        candidates: list[tuple[Decimal, str]] = []
        window_factor = _ONE
        line_factors = [_ONE] * len(categorised)
        window_labels: list[str] = []
        category_labels: list[str] = []
        for multiplier in rules.multipliers:
            if isinstance(multiplier, CategoryMultiplier):
                matched = [
                    i for i, (_, cat) in enumerate(categorised) if cat in multiplier.categories
                ]
                if not matched:
                    continue
                eligible = sum((categorised[i][0] for i in matched), Decimal(0))
                weighted = amount + (multiplier.factor - 1) * eligible
                candidates.append((weighted, multiplier.label()))
                for i in matched:
                    line_factors[i] *= multiplier.factor
                category_labels.append(multiplier.label())
            elif _window_applies(multiplier, local):
                candidates.append((amount * multiplier.factor, multiplier.label()))
                window_factor *= multiplier.factor
                window_labels.append(multiplier.label())

        applied: list[str] = []
        weighted = amount
        if rules.stack_multipliers and candidates:
            uplift = sum(
                ((f - 1) * a for f, (a, _) in zip(line_factors, categorised, strict=True)),
                Decimal(0),
            )
            weighted = (amount + uplift) * window_factor
            applied = window_labels + category_labels
        elif candidates:
            # max() keeps the first of equals: the earlier rule in the list wins a tie.
            weighted, label = max(candidates, key=lambda c: c[0])
            if weighted > amount:
                applied = [label]
            else:
                weighted = amount

        promo = weighted / amount if amount else _ONE
        if tier_multiplier != _ONE:
            applied.append(f"tier x{_display(tier_multiplier)}")
        points = _round(weighted / rules.amount_per_point * tier_multiplier, rules.rounding)
        return EarnResult(
            points=points,
            base_points=base_points,
            multiplier=_display(promo * tier_multiplier),
            applied=applied,
        )


# --- stamps -----------------------------------------------------------------------------------


def stamps_for_visit(rules: StampsRules, *, amount: Decimal | None) -> int:
    """Stamps for one visit: ``stamps_per_visit``, or 0 below the minimum spend.

    :param rules: stamps rules.
    :param amount: what was spent; may be None only when the card has no minimum spend.
    :raise ValueError: no amount for a card with a minimum spend, or a negative amount.
    """
    if amount is None:
        if rules.min_spend > 0:
            raise ValueError(f"this card needs a purchase of at least {rules.min_spend}")
        return rules.stamps_per_visit
    amount = _money(amount, "amount")
    if amount < 0:
        raise ValueError("amount must not be negative")
    return rules.stamps_per_visit if amount >= rules.min_spend else 0


def stamp_rewards_reached(rules: StampsRules, before: int, after: int) -> list[str]:
    """Rewards whose stamp count was crossed going from ``before`` to ``after`` stamps.

    Counts beyond the goal continue on the next card (see :func:`complete_stamp_card`), so
    9 -> 16 on a 10-stamp card with a reward at 5 gives the goal reward, then the one at 15.

    :param rules: stamps rules.
    :param before: stamps on the card before the visit.
    :param after: stamps after it.
    :raise ValueError: a negative count.
    """
    if before < 0 or after < 0:
        raise ValueError("stamp counts must not be negative")
    thresholds = sorted(
        [(r.at, r.name) for r in rules.intermediate_rewards] + [(rules.goal, rules.reward_name)]
    )
    reached = []
    for card in range(before // rules.goal, after // rules.goal + 1):
        for at, name in thresholds:
            if before < card * rules.goal + at <= after:
                reached.append(name)
    return reached


def complete_stamp_card(rules: StampsRules, stamps: int) -> tuple[int, int]:
    """Complete full cards: the goal rewards earned and the stamps left on the new card.

    The stamps beyond the goal carry over rather than being lost.

    :param rules: stamps rules.
    :param stamps: stamps on the card, possibly beyond the goal.
    :return: ``(rewards_earned, remaining_stamps)``.
    :raise ValueError: a negative count.
    """
    if stamps < 0:
        raise ValueError("stamp counts must not be negative")
    return divmod(stamps, rules.goal)


# --- bonuses ----------------------------------------------------------------------------------


def welcome_bonus(rules: PointsRules | StampsRules) -> int:
    """Points (or stamps, on a stamp card) given once on joining.

    :param rules: points, tiers or stamps rules.
    """
    return rules.bonuses.welcome


def referral_bonuses(rules: PointsRules, *, first_purchase: bool) -> tuple[int, int]:
    """Referral points ``(referrer, referee)``, paid only on the referee's first purchase.

    Paying on the purchase rather than on sign-up keeps self-referral from minting points.

    :param rules: points or tiers rules.
    :param first_purchase: whether this purchase is the referred member's first one.
    """
    if not first_purchase:
        return 0, 0
    return rules.bonuses.referral.referrer, rules.bonuses.referral.referee


def _birthday_in(birthday: date, year: int) -> date:
    # Feb 29 birthdays are celebrated on Feb 28 in non-leap years.
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def birthday_bonus_due(
    birthday: date | None, today: date, mode: str, last_paid: date | None
) -> bool:
    """Whether the birthday bonus is due today; at most once per calendar year.

    :param birthday: the member's birthday (its year is ignored); None: never due.
    :param today: today in the merchant's time zone.
    :param mode: ``"month"`` (any day of the birthday month) or ``"day"`` (on the day).
    :param last_paid: the date the bonus was last paid, or None.
    :raise ValueError: an unknown mode.
    """
    if mode not in ("month", "day"):
        raise ValueError(f"unknown birthday mode {mode!r}")
    if birthday is None:
        return False
    if last_paid is not None and last_paid.year >= today.year:
        return False
    if mode == "month":
        return today.month == birthday.month
    return today == _birthday_in(birthday, today.year)


# --- partial redemption -----------------------------------------------------------------------


def _point_value(rules: PointsRules) -> Decimal:
    if rules.points_to_currency is None:
        raise RedemptionNotAllowed("this program does not let points pay part of a purchase")
    return rules.points_to_currency


def discount_for_points(rules: PointsRules, points: int) -> Decimal:
    """The discount that ``points`` buy, rounded down to the cent.

    :param rules: points or tiers rules with ``points_to_currency``.
    :param points: points to spend.
    :raise RedemptionNotAllowed: no ``points_to_currency``.
    :raise ValueError: negative points.
    """
    value = _point_value(rules)
    if points < 0:
        raise ValueError("points must not be negative")
    return (value * points).quantize(_CENT, rounding=ROUND_FLOOR)


def points_for_discount(rules: PointsRules, discount: Decimal) -> int:
    """Points needed for a discount: the fewest points worth at least ``discount``.

    With ``points_to_currency`` 0.10, 20.00 costs 200 points and 20.05 costs 201.

    :param rules: points or tiers rules with ``points_to_currency``.
    :param discount: the discount asked for.
    :raise RedemptionNotAllowed: no ``points_to_currency``.
    :raise ValueError: a negative discount.
    """
    value = _point_value(rules)
    discount = _money(discount, "discount")
    if discount < 0:
        raise ValueError("discount must not be negative")
    return int((discount / value).to_integral_value(rounding=ROUND_CEILING))


def max_points_for_purchase(
    rules: PointsRules, amount: Decimal, *, balance: int | None = None
) -> int:
    """The most points that may pay for a purchase of ``amount``.

    Limited by ``max_redeem_percent`` of the amount (all of it when unset), then by the
    balance; rounded down so that the discount never exceeds the cap.

    :param rules: points or tiers rules with ``points_to_currency``.
    :param amount: the purchase amount before the points discount.
    :param balance: the member's points, when the cap should include it.
    :raise RedemptionNotAllowed: no ``points_to_currency``.
    :raise ValueError: a negative amount.
    """
    value = _point_value(rules)
    amount = _money(amount, "amount")
    if amount < 0:
        raise ValueError("amount must not be negative")
    cap = amount
    if rules.max_redeem_percent is not None:
        cap = (amount * rules.max_redeem_percent / 100).quantize(_CENT, rounding=ROUND_FLOOR)
    points = int((cap / value).to_integral_value(rounding=ROUND_FLOOR))
    if balance is not None:
        points = min(points, max(balance, 0))
    return points


# --- refunds ----------------------------------------------------------------------------------


def refund_points(
    original_points: int,
    original_amount: Decimal,
    refunded_amount: Decimal,
    already_reversed: int,
    *,
    already_refunded: Decimal,
) -> int:
    """Points to take back for a (partial) refund of a purchase, pro rata, rounded down.

    Computed on the cumulative refund: ``floor(points * (already_refunded + refunded) /
    amount) - already_reversed``, so partial refunds never add up to more than was earned
    and the refund that completes the amount takes back everything left. The same
    arithmetic gives back points that paid part of a returned purchase.

    :param original_points: points the purchase earned (or spent).
    :param original_amount: the purchase amount.
    :param refunded_amount: the amount of this refund.
    :param already_reversed: points already taken back by earlier refunds of the purchase.
    :param already_refunded: the amount of those earlier refunds.
    :raise ValueError: negative inputs, or refunds above the purchase amount.
    """
    original_amount = _money(original_amount, "original_amount")
    refunded_amount = _money(refunded_amount, "refunded_amount")
    already_refunded = _money(already_refunded, "already_refunded")
    if min(original_points, already_reversed) < 0 or min(refunded_amount, already_refunded) < 0:
        raise ValueError("refund inputs must not be negative")
    if original_amount < 0:
        raise ValueError("original_amount must not be negative")
    refunded_total = already_refunded + refunded_amount
    if refunded_total > original_amount:
        raise ValueError(
            f"refunds total {refunded_total}, more than the purchase amount {original_amount}"
        )
    left = max(original_points - already_reversed, 0)
    if refunded_total == original_amount:
        return left
    with localcontext() as ctx:
        ctx.prec = 50
        target = int(
            (original_points * refunded_total / original_amount).to_integral_value(ROUND_FLOOR)
        )
    return min(max(target - already_reversed, 0), left)
