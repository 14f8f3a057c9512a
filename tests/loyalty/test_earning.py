"""Earning arithmetic: points per purchase, multipliers, stamps, bonuses, redemption, refunds."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from walletpass.loyalty.earning import (
    Line,
    RedemptionNotAllowed,
    birthday_bonus_due,
    complete_stamp_card,
    discount_for_points,
    max_points_for_purchase,
    points_for_discount,
    points_for_purchase,
    referral_bonuses,
    refund_points,
    stamp_rewards_reached,
    stamps_for_visit,
    welcome_bonus,
)
from walletpass.loyalty.rules import validate_rules

D = Decimal
PARIS = "Europe/Paris"
# A Tuesday in winter time (UTC+1), and one in summer time (UTC+2) a week later.
TUE_WINTER = (2025, 3, 25)
TUE_SUMMER = (2025, 4, 1)
WEDNESDAY = (2025, 3, 26)


def paris(ymd, hour, minute=0):
    return datetime(*ymd, hour, minute, tzinfo=ZoneInfo(PARIS))


def utc(ymd, hour, minute=0):
    return datetime(*ymd, hour, minute, tzinfo=UTC)


NOON = utc(WEDNESDAY, 12)


def points_rules(**extra):
    return validate_rules("points", {"amount_per_point": "1.00", **extra})


def earn(rules, amount, at=NOON, **kwargs):
    return points_for_purchase(rules, amount=D(amount), at=at, tz=PARIS, **kwargs)


HAPPY_HOUR = {"kind": "window", "days": ["tue"], "start": "16:00", "end": "18:00", "factor": "2"}
COFFEE_X3 = {"kind": "category", "categories": ["coffee"], "factor": "3"}


# --- points per purchase ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "points"),
    [("1050", 10), ("105", 1), ("99.99", 0), ("100", 1), ("0", 0), ("199", 1)],
)
def test_cafe_one_point_per_100_floored_per_transaction(amount, points):
    rules = validate_rules("points", {"amount_per_point": "100"})
    result = earn(rules, amount)
    assert result.points == points
    assert result.base_points == points
    assert result.multiplier == 1
    assert result.applied == []
    assert result.reason is None


@pytest.mark.parametrize(("amount", "points"), [("12.50", 12), ("12.99", 12), ("0.99", 0)])
def test_one_point_per_unit(amount, points):
    assert earn(points_rules(), amount).points == points


def test_half_up_rounding():
    rules = points_rules(rounding="half_up")
    assert earn(rules, "12.50").points == 13
    assert earn(rules, "12.49").points == 12


def test_min_spend_gate():
    rules = points_rules(min_spend="5.00")
    below = earn(rules, "4.99")
    assert below.points == 0
    assert below.reason == "below the minimum spend of 5.00"
    assert earn(rules, "5.00").points == 5


@pytest.mark.parametrize(
    ("at", "doubled"),
    [
        (paris(TUE_WINTER, 15, 59), False),
        (paris(TUE_WINTER, 16, 0), True),
        (paris(TUE_WINTER, 17, 59), True),
        (paris(TUE_WINTER, 18, 0), False),
        (paris(WEDNESDAY, 16, 30), False),
        # The same instants given in UTC: winter Paris is UTC+1.
        (utc(TUE_WINTER, 14, 59), False),
        (utc(TUE_WINTER, 15, 0), True),
        (utc(TUE_WINTER, 17, 0), False),
        # Summer time (UTC+2): the window is 14:00-16:00 UTC.
        (utc(TUE_SUMMER, 13, 59), False),
        (utc(TUE_SUMMER, 14, 0), True),
        (utc(TUE_SUMMER, 15, 59), True),
        (utc(TUE_SUMMER, 16, 0), False),
        # Any aware time zone is converted to the merchant's.
        (datetime(2025, 4, 1, 10, 30, tzinfo=ZoneInfo("America/New_York")), True),
    ],
)
def test_double_points_tuesday_window_in_paris(at, doubled):
    rules = points_rules(multipliers=[HAPPY_HOUR])
    result = earn(rules, "10.00", at=at)
    assert result.points == (20 if doubled else 10)
    assert result.base_points == 10
    assert result.applied == (["tue 16:00-18:00 x2"] if doubled else [])


def test_dst_boundary_week_keeps_local_window():
    # 14:30 UTC is 15:30 in Paris before the clocks change (no) and 16:30 after (yes).
    rules = points_rules(multipliers=[HAPPY_HOUR])
    assert earn(rules, "10", at=utc(TUE_WINTER, 14, 30)).points == 10
    assert earn(rules, "10", at=utc(TUE_SUMMER, 14, 30)).points == 20
    # And back to winter time at the end of October (Oct 26, 2025).
    assert earn(rules, "10", at=utc((2025, 10, 21), 14, 30)).points == 20
    assert earn(rules, "10", at=utc((2025, 10, 28), 14, 30)).points == 10


def test_window_validity_dates_are_inclusive_local_dates():
    promo = {**HAPPY_HOUR, "valid_from": "2025-03-25", "valid_until": "2025-03-25"}
    rules = points_rules(multipliers=[promo])
    assert earn(rules, "10", at=paris(TUE_WINTER, 16)).points == 20
    assert earn(rules, "10", at=paris(TUE_SUMMER, 16)).points == 10
    early = points_rules(multipliers=[{**HAPPY_HOUR, "valid_from": "2025-04-01"}])
    assert earn(early, "10", at=paris(TUE_WINTER, 16)).points == 10
    assert earn(early, "10", at=paris(TUE_SUMMER, 16)).points == 20


def test_window_until_midnight():
    late = {"kind": "window", "days": ["tue"], "start": "22:00", "end": "24:00", "factor": "2"}
    rules = points_rules(multipliers=[late])
    assert earn(rules, "10", at=paris(TUE_WINTER, 23, 59)).points == 20
    assert earn(rules, "10", at=paris(WEDNESDAY, 0, 0)).points == 10


BASKET = [Line(D("4.00"), "Coffee"), Line(D("6.00"), "food")]


def test_category_multiplier_applies_to_matching_lines_only():
    rules = points_rules(multipliers=[COFFEE_X3])
    result = earn(rules, "10.00", lines=BASKET)
    assert result.points == 18  # 6 + 4 x 3
    assert result.base_points == 10
    assert result.multiplier == D("1.8")
    assert result.applied == ["coffee x3"]
    # No lines, or no matching line: no category bonus.
    assert earn(rules, "10.00").points == 10
    assert earn(rules, "10.00", lines=[Line(D("10.00"), "food")]).points == 10
    assert earn(rules, "10.00", lines=[Line(D("10.00"), None)]).points == 10


def test_lines_above_the_total_are_scaled_down():
    # A 50% basket discount: the coffee line counts for what was actually paid.
    rules = points_rules(multipliers=[COFFEE_X3])
    result = earn(rules, "5.00", lines=BASKET)
    assert result.points == 9  # 5 + 2 x 2.00 coffee paid


@pytest.mark.parametrize(
    ("at", "stack", "points", "applied"),
    [
        # In the window, best only: x2 on everything (20) beats x3 on the coffee (18).
        (paris(TUE_WINTER, 16, 30), False, 20, ["tue 16:00-18:00 x2"]),
        # Outside it only the category applies.
        (paris(WEDNESDAY, 16, 30), False, 18, ["coffee x3"]),
        # Stacked: (6 + 4 x 3) x 2.
        (paris(TUE_WINTER, 16, 30), True, 36, ["tue 16:00-18:00 x2", "coffee x3"]),
        (paris(WEDNESDAY, 16, 30), True, 18, ["coffee x3"]),
    ],
)
def test_category_versus_window_best_only_or_stacked(at, stack, points, applied):
    rules = points_rules(multipliers=[COFFEE_X3, HAPPY_HOUR], stack_multipliers=stack)
    result = earn(rules, "10.00", lines=BASKET, at=at)
    assert (result.points, result.applied) == (points, applied)


def test_best_only_picks_the_category_when_it_is_worth_more():
    rules = points_rules(multipliers=[HAPPY_HOUR, COFFEE_X3])
    coffee_only = [Line(D("10.00"), "coffee")]
    result = earn(rules, "10.00", lines=coffee_only, at=paris(TUE_WINTER, 16, 30))
    assert (result.points, result.applied) == (30, ["coffee x3"])


def test_two_category_multipliers_on_one_line_stack_only_when_asked():
    tea_x2 = {
        "kind": "category",
        "categories": ["coffee", "tea"],
        "factor": "2",
        "name": "Hot drinks",
    }
    lines = [Line(D("10"), "coffee")]
    best = points_rules(multipliers=[COFFEE_X3, tea_x2])
    assert earn(best, "10", lines=lines).points == 30
    stacked = points_rules(multipliers=[COFFEE_X3, tea_x2], stack_multipliers=True)
    result = earn(stacked, "10", lines=lines)
    assert result.points == 60
    assert result.applied == ["coffee x3", "Hot drinks"]


def test_tier_multiplier_after_the_promotion_and_a_single_floor():
    rules = points_rules(multipliers=[HAPPY_HOUR])
    result = earn(rules, "10.50", at=paris(TUE_WINTER, 16), tier_multiplier=D("1.25"))
    # 10.50 x 2 x 1.25 = 26.25 -> 26; flooring at each step would give 25.
    assert result.points == 26
    assert result.base_points == 10
    assert result.multiplier == D("2.5")
    assert result.applied == ["tue 16:00-18:00 x2", "tier x1.25"]
    plain = earn(rules, "10.50", tier_multiplier=D("1.5"))
    assert (plain.points, plain.multiplier, plain.applied) == (15, D("1.5"), ["tier x1.5"])


def test_min_spend_applies_before_multipliers():
    rules = points_rules(min_spend="5", multipliers=[HAPPY_HOUR])
    result = earn(rules, "4", at=paris(TUE_WINTER, 16), tier_multiplier=D(2))
    assert (result.points, result.applied) == (0, [])


def test_multiplier_display_is_not_scientific():
    rules = points_rules(multipliers=[{**HAPPY_HOUR, "factor": "10"}])
    assert str(earn(rules, "1", at=paris(TUE_WINTER, 16)).multiplier) == "10"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"amount": D("-1")}, ValueError, "refund_points"),
        ({"amount": 1.5}, TypeError, "Decimal"),
        ({"amount": D("NaN")}, ValueError, "finite"),
        ({"at": datetime(2025, 3, 25, 16)}, ValueError, "timezone-aware"),
        ({"tz": "Mars/Olympus"}, ValueError, "time zone"),
        ({"tier_multiplier": D(0)}, ValueError, "positive"),
        ({"lines": [Line(D("-1"), "coffee")]}, ValueError, "negative"),
    ],
)
def test_bad_purchase_inputs(kwargs, error, match):
    args = {"amount": D("10"), "at": NOON, "tz": PARIS, **kwargs}
    with pytest.raises(error, match=match):
        points_for_purchase(points_rules(), **args)


def test_plain_tuples_work_as_lines():
    rules = points_rules(multipliers=[COFFEE_X3])
    assert earn(rules, "10", lines=[(D("10"), "coffee")]).points == 30


# --- stamps -----------------------------------------------------------------------------------

CARD = validate_rules(
    "stamps",
    {
        "goal": 10,
        "reward_name": "Free coffee",
        "intermediate_rewards": [{"at": 5, "name": "Free cookie"}],
        "min_spend": "3.00",
    },
)


@pytest.mark.parametrize(("amount", "stamps"), [(D("2.99"), 0), (D("3.00"), 1), (D(50), 1)])
def test_stamps_for_visit_min_spend(amount, stamps):
    assert stamps_for_visit(CARD, amount=amount) == stamps


def test_stamps_for_visit_without_amount():
    free = validate_rules("stamps", {"goal": 8, "reward_name": "x", "stamps_per_visit": 2})
    assert stamps_for_visit(free, amount=None) == 2
    with pytest.raises(ValueError, match=r"at least 3\.00"):
        stamps_for_visit(CARD, amount=None)


@pytest.mark.parametrize(
    ("before", "after", "rewards"),
    [
        (0, 1, []),
        (4, 5, ["Free cookie"]),
        (5, 6, []),
        (9, 10, ["Free coffee"]),
        (3, 10, ["Free cookie", "Free coffee"]),
        (9, 16, ["Free coffee", "Free cookie"]),
        (0, 25, ["Free cookie", "Free coffee", "Free cookie", "Free coffee", "Free cookie"]),
        (10, 12, []),  # a completed card not yet reset: nothing new
        (5, 5, []),
        (6, 4, []),
    ],
)
def test_stamp_rewards_reached(before, after, rewards):
    assert stamp_rewards_reached(CARD, before, after) == rewards


@pytest.mark.parametrize(
    ("stamps", "completed"), [(0, (0, 0)), (9, (0, 9)), (10, (1, 0)), (12, (1, 2)), (25, (2, 5))]
)
def test_complete_stamp_card_carries_over_extra_stamps(stamps, completed):
    assert complete_stamp_card(CARD, stamps) == completed


def test_negative_stamp_counts_are_rejected():
    with pytest.raises(ValueError, match="negative"):
        stamp_rewards_reached(CARD, -1, 3)
    with pytest.raises(ValueError, match="negative"):
        complete_stamp_card(CARD, -1)
    with pytest.raises(ValueError, match="negative"):
        stamps_for_visit(CARD, amount=D(-1))


# --- bonuses ----------------------------------------------------------------------------------

BONUS_RULES = points_rules(
    bonuses={"welcome": 50, "birthday": 100, "referral": {"referrer": 200, "referee": 100}}
)


def test_welcome_bonus_points_and_stamps():
    assert welcome_bonus(BONUS_RULES) == 50
    assert welcome_bonus(points_rules()) == 0
    card = validate_rules("stamps", {"goal": 10, "reward_name": "x", "bonuses": {"welcome": 2}})
    assert welcome_bonus(card) == 2


def test_referral_paid_to_both_sides_on_first_purchase_only():
    assert referral_bonuses(BONUS_RULES, first_purchase=True) == (200, 100)
    assert referral_bonuses(BONUS_RULES, first_purchase=False) == (0, 0)
    assert referral_bonuses(points_rules(), first_purchase=True) == (0, 0)


MAY_17 = date(1990, 5, 17)
FEB_29 = date(2000, 2, 29)


@pytest.mark.parametrize(
    ("birthday", "today", "mode", "last_paid", "due"),
    [
        # Month mode: any day of the month, once a year.
        (MAY_17, date(2025, 5, 1), "month", None, True),
        (MAY_17, date(2025, 5, 31), "month", date(2024, 5, 1), True),
        (MAY_17, date(2025, 5, 20), "month", date(2025, 5, 1), False),
        (MAY_17, date(2025, 4, 30), "month", None, False),
        (MAY_17, date(2025, 6, 1), "month", None, False),
        # Day mode: on the day only.
        (MAY_17, date(2025, 5, 17), "day", None, True),
        (MAY_17, date(2025, 5, 16), "day", None, False),
        (MAY_17, date(2025, 5, 18), "day", None, False),
        (MAY_17, date(2025, 5, 17), "day", date(2024, 5, 17), True),
        (MAY_17, date(2025, 5, 17), "day", date(2025, 5, 17), False),
        # Feb 29: on Feb 28 in non-leap years, on Feb 29 in leap years.
        (FEB_29, date(2025, 2, 28), "day", None, True),
        (FEB_29, date(2025, 3, 1), "day", None, False),
        (FEB_29, date(2024, 2, 29), "day", None, True),
        (FEB_29, date(2024, 2, 28), "day", None, False),
        (FEB_29, date(2025, 2, 1), "month", None, True),
        (FEB_29, date(2026, 2, 28), "day", date(2025, 2, 28), True),
        (None, date(2025, 5, 17), "day", None, False),
    ],
)
def test_birthday_bonus_due(birthday, today, mode, last_paid, due):
    assert birthday_bonus_due(birthday, today, mode, last_paid) is due


def test_birthday_mode_is_checked():
    with pytest.raises(ValueError, match="birthday mode"):
        birthday_bonus_due(MAY_17, date(2025, 5, 17), "week", None)


# --- partial redemption -----------------------------------------------------------------------

REDEEM = points_rules(points_to_currency="0.10", max_redeem_percent="50")


def test_200_points_are_20_off():
    assert discount_for_points(REDEEM, 200) == D("20.00")
    assert points_for_discount(REDEEM, D("20.00")) == 200


@pytest.mark.parametrize(
    ("points", "discount"), [(0, "0.00"), (1, "0.10"), (15, "1.50"), (1234, "123.40")]
)
def test_discount_for_points(points, discount):
    assert discount_for_points(REDEEM, points) == D(discount)


@pytest.mark.parametrize(
    ("discount", "points"), [("0", 0), ("0.01", 1), ("20.05", 201), ("19.99", 200)]
)
def test_points_for_discount_rounds_up_to_cover_the_discount(discount, points):
    assert points_for_discount(REDEEM, D(discount)) == points


def test_discount_rounds_down_to_the_cent():
    odd = points_rules(points_to_currency="0.015")
    assert discount_for_points(odd, 3) == D("0.04")


def test_max_points_for_purchase_respects_percent_and_balance():
    assert max_points_for_purchase(REDEEM, D("30.00")) == 150  # 15.00 = 50% of 30.00
    assert max_points_for_purchase(REDEEM, D("30.00"), balance=120) == 120
    assert max_points_for_purchase(REDEEM, D("30.00"), balance=-5) == 0
    assert max_points_for_purchase(REDEEM, D("30.05")) == 150  # 15.02 -> 150 points, not 151
    uncapped = points_rules(points_to_currency="0.10")
    assert max_points_for_purchase(uncapped, D("30.00")) == 300


def test_partial_redemption_needs_a_point_value():
    rules = points_rules()
    for call in (
        lambda: discount_for_points(rules, 10),
        lambda: points_for_discount(rules, D(1)),
        lambda: max_points_for_purchase(rules, D(10)),
    ):
        with pytest.raises(RedemptionNotAllowed):
            call()


def test_redemption_rejects_negatives():
    with pytest.raises(ValueError, match="negative"):
        discount_for_points(REDEEM, -1)
    with pytest.raises(ValueError, match="negative"):
        points_for_discount(REDEEM, D(-1))
    with pytest.raises(ValueError, match="negative"):
        max_points_for_purchase(REDEEM, D(-1))


# --- refunds ----------------------------------------------------------------------------------


def refund_sequence(points, amount, refunds):
    reversed_so_far, refunded_so_far, out = 0, D(0), []
    for refund in refunds:
        taken = refund_points(
            points, D(amount), D(refund), reversed_so_far, already_refunded=refunded_so_far
        )
        out.append(taken)
        reversed_so_far += taken
        refunded_so_far += D(refund)
    return out


@pytest.mark.parametrize(
    ("points", "amount", "refunds", "taken"),
    [
        (10, "100.00", ["100.00"], [10]),
        (10, "100.00", ["50.00"], [5]),
        (10, "100.00", ["33.33", "33.33", "33.34"], [3, 3, 4]),
        (10, "1050", ["350", "350", "350"], [3, 3, 4]),
        (7, "10.00", ["1.00"] * 10, [0, 1, 1, 0, 1, 1, 0, 1, 1, 1]),
        (0, "5.00", ["2.00", "3.00"], [0, 0]),
        (26, "10.50", ["0.01", "10.49"], [0, 26]),
    ],
)
def test_partial_refunds_reverse_exactly_what_was_earned(points, amount, refunds, taken):
    result = refund_sequence(points, amount, refunds)
    assert result == taken
    if sum(D(r) for r in refunds) == D(amount):
        assert sum(result) == points


def test_refund_never_takes_back_more_than_left():
    # Points already taken back by hand: the refund only takes what is still there.
    assert refund_points(10, D(100), D(50), 8, already_refunded=D(0)) == 0
    assert refund_points(10, D(100), D(100), 8, already_refunded=D(0)) == 2
    assert refund_points(10, D(100), D(100), 12, already_refunded=D(0)) == 0


def test_refund_above_the_purchase_is_rejected():
    with pytest.raises(ValueError, match="more than the purchase amount"):
        refund_points(10, D(100), D("60"), 5, already_refunded=D("50"))
    with pytest.raises(ValueError, match="negative"):
        refund_points(10, D(100), D("-1"), 0, already_refunded=D(0))
