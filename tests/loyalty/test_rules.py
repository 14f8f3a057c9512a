"""Rule validation: valid examples per kind, storage round trip, every error path."""

from decimal import Decimal

import pytest

from walletpass.loyalty.rules import (
    CategoryMultiplier,
    LotExpiry,
    MembershipRules,
    NoExpiry,
    OffersRules,
    PointsRules,
    RollingWindow,
    RulesError,
    StampsRules,
    TiersRules,
    WindowMultiplier,
    parse_time,
    validate_rules,
)

CAFE_POINTS = {
    "amount_per_point": "100",
    "points_to_currency": "0.10",
    "max_redeem_percent": "50",
    "multipliers": [
        {"kind": "category", "categories": ["Coffee"], "factor": "2"},
        {"kind": "window", "days": ["tue"], "start": "16:00", "end": "18:00", "factor": "2"},
    ],
    "bonuses": {
        "welcome": 50,
        "birthday": 100,
        "birthday_mode": "day",
        "referral": {"referrer": 100, "referee": 50},
    },
    "expiry": {"mode": "lots", "months": 12, "warn_days": 14},
}

STAMP_CARD = {
    "goal": 10,
    "reward_name": "Free coffee",
    "intermediate_rewards": [{"at": 5, "name": "Free cookie"}],
    "expiry": {"mode": "rolling", "months": 6},
    "bonuses": {"welcome": 1},
}

TIERS = {
    "amount_per_point": "1.00",
    "levels": [
        {"name": "Member", "min_spend": "0"},
        {
            "name": "Silver",
            "min_spend": "5000",
            "discount_percent": "10",
            "earn_multiplier": "1.25",
        },
        {"name": "Gold", "min_spend": "10000", "discount_percent": "20", "earn_multiplier": "1.5"},
    ],
    "window": {"mode": "rolling", "months": 12},
    "downgrade": {"mode": "end_of_window"},
}


def errors_of(kind, raw):
    with pytest.raises(RulesError) as info:
        validate_rules(kind, raw)
    return info.value.errors


def fields_of(kind, raw):
    return [e["field"] for e in errors_of(kind, raw)]


# --- valid rules ------------------------------------------------------------------------------


def test_points_example():
    rules = validate_rules("points", CAFE_POINTS)
    assert isinstance(rules, PointsRules)
    assert rules.amount_per_point == Decimal(100)
    assert rules.rounding == "floor"
    assert rules.min_spend == 0
    assert rules.stack_multipliers is False
    category, window = rules.multipliers
    assert isinstance(category, CategoryMultiplier)
    assert category.categories == ["coffee"]  # normalised for matching
    assert isinstance(window, WindowMultiplier)
    assert rules.bonuses.referral.referee == 50
    assert rules.expiry == LotExpiry(mode="lots", months=12, warn_days=14)


def test_minimal_rules_get_defaults():
    points = validate_rules("points", {"amount_per_point": "1.00"})
    assert points.expiry == NoExpiry(mode="none")
    assert points.multipliers == []
    assert points.points_to_currency is None
    assert validate_rules("offers", {}) == OffersRules(rollover=True)
    assert validate_rules("offers", None) == OffersRules(rollover=True)
    membership = validate_rules("membership", {})
    assert membership == MembershipRules(paid=False, validity_months=12, renewal="manual")


def test_stamps_example():
    rules = validate_rules("stamps", STAMP_CARD)
    assert isinstance(rules, StampsRules)
    assert rules.stamps_per_visit == 1
    assert rules.intermediate_rewards[0].at == 5


def test_tiers_example_is_points_plus_levels():
    rules = validate_rules("tiers", TIERS)
    assert isinstance(rules, TiersRules)
    assert isinstance(rules, PointsRules)
    assert [lvl.name for lvl in rules.levels] == ["Member", "Silver", "Gold"]
    assert rules.levels[2].earn_multiplier == Decimal("1.5")
    assert rules.window == RollingWindow(mode="rolling", months=12)


def test_tiers_default_window_and_downgrade():
    rules = validate_rules(
        "tiers", {"amount_per_point": "1", "levels": [{"name": "A", "min_spend": 0}]}
    )
    assert rules.window.mode == "lifetime"
    assert rules.downgrade.mode == "never"


def test_paid_membership():
    rules = validate_rules(
        "membership", {"paid": True, "price": "29.00", "validity_months": 12, "renewal": "auto"}
    )
    assert rules.price == Decimal("29.00")


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("points", CAFE_POINTS),
        ("stamps", STAMP_CARD),
        ("tiers", TIERS),
        ("membership", {"paid": True, "price": "29.00"}),
        ("offers", {"rollover": False}),
    ],
)
def test_stored_form_round_trips(kind, raw):
    rules = validate_rules(kind, raw)
    stored = rules.model_dump(mode="json")
    assert validate_rules(kind, stored) == rules
    # Money stays a decimal string in JSON, never a float.
    if kind in ("points", "tiers"):
        assert isinstance(stored["amount_per_point"], str)


def test_stored_values_keep_their_text():
    stored = validate_rules("points", CAFE_POINTS).model_dump(mode="json")
    assert stored["points_to_currency"] == "0.10"
    assert stored["multipliers"][1]["start"] == "16:00"
    assert stored["expiry"] == {"mode": "lots", "months": 12, "warn_days": 14}


@pytest.mark.parametrize("expiry", [None, "none", {"mode": "none"}])
def test_no_expiry_shorthands(expiry):
    rules = validate_rules("points", {"amount_per_point": "1", "expiry": expiry})
    assert rules.expiry == NoExpiry(mode="none")


def test_window_may_end_at_midnight_and_days_are_case_insensitive():
    rules = validate_rules(
        "points",
        {
            "amount_per_point": "1",
            "multipliers": [
                {
                    "kind": "window",
                    "days": ["Fri", "SAT"],
                    "start": "20:00",
                    "end": "24:00",
                    "factor": "3",
                }
            ],
        },
    )
    assert rules.multipliers[0].days == ["fri", "sat"]


def test_rules_are_immutable():
    rules = validate_rules("offers", {})
    with pytest.raises(ValueError, match="frozen"):
        rules.rollover = False


@pytest.mark.parametrize(
    ("text", "minutes"), [("00:00", 0), ("16:00", 960), ("23:59", 1439), ("24:00", 1440)]
)
def test_parse_time(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["24:01", "7:00", "12:60", "noon", "25:00"])
def test_parse_time_rejects(text):
    with pytest.raises(ValueError, match="HH:MM"):
        parse_time(text)


# --- error paths ------------------------------------------------------------------------------


def test_unknown_kind():
    assert errors_of("loyalty", {}) == [
        {
            "field": "kind",
            "message": "Unknown program kind 'loyalty': expected points, stamps, tiers, "
            "membership, offers.",
        }
    ]


@pytest.mark.parametrize("raw", [[], "x", 3])
def test_rules_must_be_an_object(raw):
    assert errors_of("points", raw) == [{"field": "", "message": "Rules must be a JSON object."}]


def test_error_is_a_value_error_with_readable_text():
    with pytest.raises(ValueError, match=r"amount_per_point: This field is required\."):
        validate_rules("points", {})


# Each case: kind, rules, the one expected field, a fragment of its message.
POINTS_BASE = {"amount_per_point": "1.00"}


def with_points(**extra):
    return {**POINTS_BASE, **extra}


def window(**extra):
    return {
        "kind": "window",
        "days": ["tue"],
        "start": "16:00",
        "end": "18:00",
        "factor": "2",
        **extra,
    }


SINGLE_ERRORS = [
    ("points", {}, "amount_per_point", "required"),
    ("points", {"amount_per_point": "0"}, "amount_per_point", "greater than 0"),
    ("points", {"amount_per_point": "-1"}, "amount_per_point", "greater than 0"),
    ("points", {"amount_per_point": "abc"}, "amount_per_point", "number"),
    ("points", {"amount_per_point": "NaN"}, "amount_per_point", "finite"),
    ("points", {"amount_per_point": True}, "amount_per_point", "not true or false"),
    ("points", {"amount_per_point": "0.00001"}, "amount_per_point", "decimal places"),
    ("points", with_points(rounding="up"), "rounding", "'floor' or 'half_up'"),
    ("points", with_points(min_spend="-0.01"), "min_spend", "at least 0"),
    ("points", with_points(points_to_currency="0"), "points_to_currency", "greater than 0"),
    ("points", with_points(max_redeem_percent="50"), "max_redeem_percent", "points_to_currency"),
    (
        "points",
        with_points(points_to_currency="0.1", max_redeem_percent="101"),
        "max_redeem_percent",
        "at most 100",
    ),
    ("points", with_points(stack_multipliers="maybe"), "stack_multipliers", "true or false"),
    (
        "points",
        with_points(amount_per_pont="1"),
        "amount_per_pont",
        "did you mean 'amount_per_point'",
    ),
    ("points", with_points(levels=[]), "levels", "Unknown field for a points program"),
    ("points", with_points(multipliers="x"), "multipliers", "list"),
    ("points", with_points(multipliers=[{}]), "multipliers.0", "Missing 'kind'"),
    (
        "points",
        with_points(multipliers=[{"kind": "happy"}]),
        "multipliers.0",
        "Unknown kind 'happy'",
    ),
    (
        "points",
        with_points(multipliers=[{"kind": "category", "categories": [], "factor": "2"}]),
        "multipliers.0.categories",
        "at least 1",
    ),
    (
        "points",
        with_points(
            multipliers=[{"kind": "category", "categories": ["tea", "Tea "], "factor": "2"}]
        ),
        "multipliers.0.categories.1",
        "Duplicate category",
    ),
    (
        "points",
        with_points(multipliers=[{"kind": "category", "categories": ["tea"], "factor": "1"}]),
        "multipliers.0.factor",
        "greater than 1",
    ),
    (
        "points",
        with_points(multipliers=[window(factor="10.5")]),
        "multipliers.0.factor",
        "at most 10",
    ),
    (
        "points",
        with_points(multipliers=[window(days=["tuesday"])]),
        "multipliers.0.days.0",
        "'tue'",
    ),
    (
        "points",
        with_points(multipliers=[window(days=["tue", "tue"])]),
        "multipliers.0.days.1",
        "Duplicate",
    ),
    ("points", with_points(multipliers=[window(days=[])]), "multipliers.0.days", "at least 1"),
    ("points", with_points(multipliers=[window(start="4pm")]), "multipliers.0.start", "HH:MM"),
    (
        "points",
        with_points(multipliers=[window(start="24:00", end="24:00")]),
        "multipliers.0.start",
        "24:00",
    ),
    (
        "points",
        with_points(multipliers=[window(end="16:00")]),
        "multipliers.0.end",
        "later than the start",
    ),
    (
        "points",
        with_points(multipliers=[window(start="22:00", end="02:00")]),
        "multipliers.0.end",
        "midnight",
    ),
    (
        "points",
        with_points(multipliers=[window(valid_from="2025-13-01")]),
        "multipliers.0.valid_from",
        "YYYY-MM-DD",
    ),
    (
        "points",
        with_points(multipliers=[window(valid_from="2025-03-01", valid_until="2025-02-01")]),
        "multipliers.0.valid_until",
        "before valid_from",
    ),
    (
        "points",
        with_points(multipliers=[window(colour="red")]),
        "multipliers.0.colour",
        "Unknown field",
    ),
    ("points", with_points(bonuses={"welcome": -5}), "bonuses.welcome", "at least 0"),
    ("points", with_points(bonuses={"welcome": 1.5}), "bonuses.welcome", "whole number"),
    (
        "points",
        with_points(bonuses={"birthday_mode": "week"}),
        "bonuses.birthday_mode",
        "'month' or 'day'",
    ),
    (
        "points",
        with_points(bonuses={"referral": {"referrer": -1}}),
        "bonuses.referral.referrer",
        "at least 0",
    ),
    (
        "points",
        with_points(bonuses={"referral": {"friend": 1}}),
        "bonuses.referral.friend",
        "Unknown field",
    ),
    ("points", with_points(expiry="lots"), "expiry", "object"),
    ("points", with_points(expiry={"mode": "never"}), "expiry", "Unknown mode 'never'"),
    ("points", with_points(expiry={"months": 3}), "expiry", "Missing 'mode'"),
    ("points", with_points(expiry={"mode": "lots"}), "expiry.months", "required"),
    ("points", with_points(expiry={"mode": "lots", "months": 0}), "expiry.months", "at least 1"),
    (
        "points",
        with_points(expiry={"mode": "rolling", "months": 121}),
        "expiry.months",
        "at most 120",
    ),
    (
        "points",
        with_points(expiry={"mode": "lots", "months": 1, "warn_days": -1}),
        "expiry.warn_days",
        "at least 0",
    ),
    (
        "points",
        with_points(expiry={"mode": "lots", "months": 1, "warn_days": 30}),
        "expiry.warn_days",
        "shorter",
    ),
    ("points", with_points(expiry={"mode": "none", "months": 3}), "expiry.months", "Unknown field"),
    ("stamps", {"reward_name": "Free coffee"}, "goal", "required"),
    ("stamps", {"goal": 1, "reward_name": "Free coffee"}, "goal", "at least 2"),
    ("stamps", {"goal": 51, "reward_name": "Free coffee"}, "goal", "at most 50"),
    ("stamps", {"goal": 10}, "reward_name", "required"),
    ("stamps", {"goal": 10, "reward_name": "  "}, "reward_name", "empty"),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "stamps_per_visit": 0},
        "stamps_per_visit",
        "at least 1",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "stamps_per_visit": 11},
        "stamps_per_visit",
        "exceed the goal",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "intermediate_rewards": [{"at": 10, "name": "y"}]},
        "intermediate_rewards.0.at",
        "less than the goal",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "intermediate_rewards": [{"at": 0, "name": "y"}]},
        "intermediate_rewards.0.at",
        "at least 1",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "intermediate_rewards": [{"at": 5}]},
        "intermediate_rewards.0.name",
        "required",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "bonuses": {"welcome": 10}},
        "bonuses.welcome",
        "less than the goal",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "bonuses": {"birthday": 1}},
        "bonuses.birthday",
        "Unknown field",
    ),
    (
        "stamps",
        {"goal": 10, "reward_name": "x", "amount_per_point": "1"},
        "amount_per_point",
        "Unknown field",
    ),
    ("tiers", {"amount_per_point": "1"}, "levels", "required"),
    ("tiers", {"amount_per_point": "1", "levels": []}, "levels", "at least 1"),
    (
        "tiers",
        {
            "amount_per_point": "1",
            "levels": [{"name": "A", "min_spend": 0, "discount_percent": 101}],
        },
        "levels.0.discount_percent",
        "at most 100",
    ),
    (
        "tiers",
        {
            "amount_per_point": "1",
            "levels": [{"name": "A", "min_spend": 0, "earn_multiplier": "0.5"}],
        },
        "levels.0.earn_multiplier",
        "at least 1",
    ),
    (
        "tiers",
        {
            "amount_per_point": "1",
            "levels": [{"name": "A", "min_spend": 0, "earn_multiplier": "11"}],
        },
        "levels.0.earn_multiplier",
        "at most 10",
    ),
    (
        "tiers",
        {"amount_per_point": "1", "levels": [{"name": "", "min_spend": 0}]},
        "levels.0.name",
        "empty",
    ),
    (
        "tiers",
        {"amount_per_point": "1", "levels": [{"name": "A", "min_spend": -1}]},
        "levels.0.min_spend",
        "at least 0",
    ),
    (
        "tiers",
        {
            "amount_per_point": "1",
            "levels": [{"name": "A", "min_spend": 0}],
            "window": {"mode": "rolling"},
        },
        "window.months",
        "required",
    ),
    (
        "tiers",
        {
            "amount_per_point": "1",
            "levels": [{"name": "A", "min_spend": 0}],
            "window": {"mode": "yearly"},
        },
        "window",
        "Unknown mode 'yearly'",
    ),
    (
        "tiers",
        {
            "amount_per_point": "1",
            "levels": [{"name": "A", "min_spend": 0}],
            "downgrade": {"mode": "soon"},
        },
        "downgrade.mode",
        "'never' or 'end_of_window'",
    ),
    ("membership", {"paid": True}, "price", "Required for a paid membership"),
    ("membership", {"price": "10"}, "price", "Only a paid membership"),
    ("membership", {"paid": True, "price": "0"}, "price", "greater than 0"),
    ("membership", {"validity_months": 0}, "validity_months", "at least 1"),
    ("membership", {"renewal": "yearly"}, "renewal", "'manual' or 'auto'"),
    ("membership", {"amount_per_point": "1"}, "amount_per_point", "no points or stamps"),
    ("membership", {"expiry": {"mode": "none"}}, "expiry", "no points or stamps"),
    ("membership", {"colour": "red"}, "colour", "Unknown field for a membership program"),
    ("offers", {"goal": 10}, "goal", "An offers program has no points or stamps"),
    ("offers", {"rollover": "sometimes"}, "rollover", "true or false"),
    ("offers", {"valid_until": "2025-01-01"}, "valid_until", "Unknown field for an offers program"),
]


@pytest.mark.parametrize(("kind", "raw", "field", "fragment"), SINGLE_ERRORS)
def test_each_error_has_a_field_path_and_a_message(kind, raw, field, fragment):
    errors = errors_of(kind, raw)
    assert [e["field"] for e in errors] == [field]
    assert fragment in errors[0]["message"]
    assert errors[0]["message"][0].isupper()  # a sentence, not a pydantic code


def test_all_errors_are_reported_at_once():
    raw = {
        "amount_per_point": "0",
        "rounding": "up",
        "min_spend": "-1",
        "multipliers": [
            {"kind": "category", "categories": ["tea"], "factor": "20"},
            # Bad day and reversed times in the same multiplier: both reported.
            {"kind": "window", "days": ["xx"], "start": "18:00", "end": "16:00", "factor": "2"},
        ],
        "bonuses": {"welcome": -1, "referral": {"referee": -1}},
        "expiry": {"mode": "lots", "months": 0},
        "junk": 1,
    }
    assert sorted(fields_of("points", raw)) == sorted(
        [
            "amount_per_point",
            "rounding",
            "min_spend",
            "multipliers.0.factor",
            "multipliers.1.days.0",
            "multipliers.1.end",
            "bonuses.welcome",
            "bonuses.referral.referee",
            "expiry.months",
            "junk",
        ]
    )


def test_level_errors_point_at_each_bad_level():
    raw = {
        "amount_per_point": "1",
        "levels": [
            {"name": "Member", "min_spend": "0"},
            {"name": "Gold", "min_spend": "10000"},
            {"name": "Silver", "min_spend": "5000"},
            {"name": "gold", "min_spend": "20000"},
        ],
    }
    errors = errors_of("tiers", raw)
    assert [e["field"] for e in errors] == ["levels.2.min_spend", "levels.3.name"]
    assert "lowest to highest" in errors[0]["message"]
    assert "Duplicate level name" in errors[1]["message"]


def test_level_order_is_checked_alongside_other_errors():
    raw = {
        "amount_per_point": "-1",
        "levels": [{"name": "B", "min_spend": "10"}, {"name": "A", "min_spend": "10"}],
        "downgrade": {"mode": "x"},
    }
    assert fields_of("tiers", raw) == ["amount_per_point", "levels.1.min_spend", "downgrade.mode"]


def test_intermediate_rewards_must_increase():
    raw = {
        "goal": 10,
        "reward_name": "Free coffee",
        "intermediate_rewards": [
            {"at": 5, "name": "a"},
            {"at": 3, "name": "b"},
            {"at": 12, "name": "c"},
        ],
    }
    assert fields_of("stamps", raw) == ["intermediate_rewards.1.at", "intermediate_rewards.2.at"]


def test_cross_checks_skip_when_the_goal_itself_is_bad():
    # The goal's own error is enough: no second error compares against an invalid goal.
    raw = {"goal": "ten", "reward_name": "x", "intermediate_rewards": [{"at": 50, "name": "y"}]}
    assert fields_of("stamps", raw) == ["goal"]
