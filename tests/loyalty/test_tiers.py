"""Tiers: silver at 5,000 and gold at 10,000 cumulative spend, windows, reviews."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from walletpass.loyalty.earning import points_for_purchase
from walletpass.loyalty.rules import LifetimeWindow, RollingWindow, validate_rules
from walletpass.loyalty.tiers import (
    earn_multiplier_for,
    level_named,
    next_tier,
    qualifying_spend,
    tier_after_review,
    tier_for_spend,
)

D = Decimal


def at(y, m, d):
    return datetime(y, m, d, 12, tzinfo=UTC)


LEVELS = [
    {"name": "Member", "min_spend": "0"},
    {"name": "Silver", "min_spend": "5000", "discount_percent": "10", "earn_multiplier": "1.25"},
    {"name": "Gold", "min_spend": "10000", "discount_percent": "20", "earn_multiplier": "1.5"},
]


def tiers(levels=LEVELS, **extra):
    return validate_rules("tiers", {"amount_per_point": "1.00", "levels": levels, **extra})


RULES = tiers()
NO_BASE = tiers(levels=LEVELS[1:])


def name(level):
    return level.name if level else None


@pytest.mark.parametrize(
    ("spend", "tier"),
    [
        ("0", "Member"),
        ("4999.99", "Member"),
        ("5000", "Silver"),
        ("9999.99", "Silver"),
        ("10000", "Gold"),
        ("250000", "Gold"),
        ("-20", None),  # refunds above purchases
    ],
)
def test_tier_for_spend(spend, tier):
    assert name(tier_for_spend(RULES, D(spend))) == tier


def test_without_a_base_level_low_spend_has_no_tier():
    assert tier_for_spend(NO_BASE, D("4999")) is None
    assert name(tier_for_spend(NO_BASE, D("5000"))) == "Silver"


def test_level_benefits():
    silver, gold = level_named(RULES, "Silver"), level_named(RULES, "gold")
    assert (silver.discount_percent, silver.earn_multiplier) == (D(10), D("1.25"))
    assert (gold.discount_percent, gold.earn_multiplier) == (D(20), D("1.5"))
    assert earn_multiplier_for(RULES, "Gold") == D("1.5")
    assert earn_multiplier_for(RULES, None) == 1
    assert earn_multiplier_for(RULES, "Platinum") == 1
    assert level_named(RULES, None) is None


@pytest.mark.parametrize(
    ("spend", "expected"),
    [
        ("0", ("Silver", "5000")),
        ("4000", ("Silver", "1000")),
        ("5000", ("Gold", "5000")),
        ("9999.50", ("Gold", "0.50")),
        ("10000", None),
    ],
)
def test_next_tier_and_missing_spend(spend, expected):
    result = next_tier(RULES, D(spend))
    if expected is None:
        assert result is None
    else:
        level, missing = result
        assert (level.name, missing) == (expected[0], D(expected[1]))


def test_tier_multiplier_feeds_earning():
    gold = earn_multiplier_for(RULES, "Gold")
    result = points_for_purchase(
        RULES, amount=D("100.00"), at=at(2025, 3, 26), tz="Europe/Paris", tier_multiplier=gold
    )
    assert (result.points, result.base_points) == (150, 100)
    silver = earn_multiplier_for(RULES, "Silver")
    result = points_for_purchase(
        RULES, amount=D("10.00"), at=at(2025, 3, 26), tz="Europe/Paris", tier_multiplier=silver
    )
    assert result.points == 12  # 12.5 floored


PURCHASES = [
    (at(2023, 6, 1), D("4000")),
    (at(2024, 6, 15), D("3000")),  # exactly 12 months before NOW
    (at(2024, 9, 1), D("2500")),
    (at(2025, 1, 10), D("3000")),
    (at(2025, 2, 1), D("-500")),  # a refund
    (at(2025, 7, 1), D("9999")),  # after NOW: not counted
]
NOW = at(2025, 6, 15)


def test_qualifying_spend_lifetime():
    assert qualifying_spend(PURCHASES, LifetimeWindow(mode="lifetime"), NOW) == D("12000")


def test_qualifying_spend_rolling_window():
    window = RollingWindow(mode="rolling", months=12)
    assert qualifying_spend(PURCHASES, window, NOW) == D("5000")
    assert qualifying_spend(PURCHASES, RollingWindow(mode="rolling", months=1), NOW) == 0
    assert qualifying_spend([], window, NOW) == 0


def test_lifetime_and_rolling_reach_different_tiers():
    lifetime = qualifying_spend(PURCHASES, LifetimeWindow(mode="lifetime"), NOW)
    rolling = qualifying_spend(PURCHASES, RollingWindow(mode="rolling", months=12), NOW)
    assert name(tier_for_spend(RULES, lifetime)) == "Gold"
    assert name(tier_for_spend(RULES, rolling)) == "Silver"


REVIEW = at(2025, 12, 31)
KEEP = tiers(window={"mode": "rolling", "months": 12}, downgrade={"mode": "never"})
RESET = tiers(window={"mode": "rolling", "months": 12}, downgrade={"mode": "end_of_window"})


@pytest.mark.parametrize(
    ("rules", "current", "spend", "now", "window_end", "expected"),
    [
        # Upgrades are immediate, whatever the downgrade rule.
        (KEEP, "Member", "5000", at(2025, 6, 1), REVIEW, "Silver"),
        (RESET, "Silver", "12000", at(2025, 6, 1), REVIEW, "Gold"),
        (RESET, None, "6000", at(2025, 6, 1), None, "Silver"),
        (RESET, "Gold", "15000", REVIEW, REVIEW, "Gold"),
        # Never downgrade: a tier once reached is kept.
        (KEEP, "Gold", "100", REVIEW, REVIEW, "Gold"),
        (KEEP, "Gold", "100", at(2026, 3, 1), REVIEW, "Gold"),
        # End of window: kept until the review date, then re-assessed.
        (RESET, "Gold", "6000", at(2025, 12, 30), REVIEW, "Gold"),
        (RESET, "Gold", "6000", REVIEW, REVIEW, "Silver"),
        (RESET, "Gold", "100", at(2026, 1, 2), REVIEW, "Member"),
        (RESET, "Gold", "100", at(2026, 1, 2), None, "Gold"),
        # A stored tier that no longer exists counts as none.
        (RESET, "Platinum", "100", at(2025, 6, 1), REVIEW, "Member"),
    ],
)
def test_tier_after_review(rules, current, spend, now, window_end, expected):
    assert name(tier_after_review(rules, current, D(spend), now, window_end)) == expected


def test_review_without_base_level_can_drop_the_tier():
    rules = tiers(levels=LEVELS[1:], downgrade={"mode": "end_of_window"})
    assert tier_after_review(rules, "Silver", D(10), REVIEW, REVIEW) is None
    assert name(tier_after_review(rules, "Silver", D(10), at(2025, 1, 1), REVIEW)) == "Silver"
