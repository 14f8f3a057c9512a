"""Program rules as form fields: every kind's rules survive the form both ways, and what the
fields do not cover stays in the advanced JSON."""

from __future__ import annotations

import json

import pytest

from walletpass.admin import rules_forms
from walletpass.loyalty.rules import RulesError, validate_rules

# Every rule the form shows, for each kind, set away from its default.
FULL = {
    "points": {
        "amount_per_point": "2.50",
        "rounding": "half_up",
        "min_spend": "3.00",
        "points_to_currency": "0.05",
        "max_redeem_percent": "50",
        "stack_multipliers": True,
        "multipliers": [
            {"kind": "category", "categories": ["coffee"], "factor": "2"},
            {
                "kind": "window",
                "days": ["mon", "tue"],
                "start": "14:00",
                "end": "17:00",
                "factor": "3",
            },
        ],
        "bonuses": {
            "welcome": 10,
            "birthday": 25,
            "birthday_mode": "day",
            "referral": {"referrer": 30, "referee": 15},
        },
        "expiry": {"mode": "lots", "months": 12, "warn_days": 14},
    },
    "tiers": {
        "amount_per_point": "1.00",
        "levels": [
            {"name": "Member", "min_spend": "0"},
            {"name": "Silver", "min_spend": "500", "discount_percent": "5"},
            {
                "name": "Gold",
                "min_spend": "1500",
                "discount_percent": "10",
                "earn_multiplier": "1.5",
            },
        ],
        "window": {"mode": "rolling", "months": 12},
        "downgrade": {"mode": "end_of_window"},
        "expiry": {"mode": "rolling", "months": 24, "warn_days": 30},
    },
    "stamps": {
        "goal": 9,
        "stamps_per_visit": 2,
        "min_spend": "4.00",
        "reward_name": "Free coffee",
        "intermediate_rewards": [{"at": 3, "name": "Cookie"}, {"at": 6, "name": "Muffin"}],
        "expiry": {"mode": "rolling", "months": 6, "warn_days": 7},
        "bonuses": {"welcome": 1},
    },
    "membership": {
        "paid": True,
        "price": "30.00",
        "validity_months": 6,
        "renewal": "manual",
        "benefits": "10% off every visit",
        "reminder_days": 21,
    },
    "offers": {"rollover": False},
}
MINIMAL = {
    "points": {"amount_per_point": "1"},
    "tiers": {"amount_per_point": "1", "levels": [{"name": "Member", "min_spend": "0"}]},
    "stamps": {"goal": 10, "reward_name": "Free coffee"},
    "membership": {},
    "offers": {},
}


def normalised(kind: str, rules: dict) -> dict:  # type: ignore[type-arg]
    return validate_rules(kind, rules).model_dump(mode="json")


def through_the_form(kind: str, rules: dict) -> dict:  # type: ignore[type-arg]
    values = rules_forms.to_form(kind, rules)
    # A browser posts every field, the spare rows blank, and no unticked checkbox.
    posted = {k: v for k, v in values.items() if v != "" or not _is_checkbox(kind, k)}
    return normalised(kind, json.loads(rules_forms.from_form(kind, posted).text))


def _is_checkbox(kind: str, name: str) -> bool:
    return (name.removeprefix(rules_forms.PREFIX), "bool") in rules_forms.SCALARS[kind]


@pytest.mark.parametrize("kind", sorted(FULL))
@pytest.mark.parametrize("sample", [FULL, MINIMAL], ids=["full", "minimal"])
def test_every_kind_survives_the_form(kind: str, sample: dict) -> None:  # type: ignore[type-arg]
    assert through_the_form(kind, sample[kind]) == normalised(kind, sample[kind])


def test_the_fields_cover_all_but_the_promotions() -> None:
    for kind, rules in FULL.items():
        values = rules_forms.to_form(kind, rules)
        advanced = json.loads(values["rules"]) if values["rules"] else {}
        assert set(advanced) == ({"multipliers"} if kind == "points" else set()), kind
        # The tiers' fields cover their multipliers key too: it is empty by default.
    tiers = rules_forms.to_form("tiers", FULL["tiers"])
    assert tiers["rules.levels.2.earn_multiplier"] == "1.5"
    assert tiers["rules.window.mode"] == "rolling"
    assert tiers["rules.window.months"] == "12"
    assert rules_forms.to_form("points", FULL["points"])["rules.stack_multipliers"] == "on"


def test_blank_rows_are_dropped_and_errors_point_at_the_row_shown() -> None:
    values = rules_forms.to_form("tiers", MINIMAL["tiers"])
    # The third row filled in, the second (spare) left blank: the rules get two levels,
    # and the error on the second level is the form's third row's.
    values.update({"rules.levels.2.name": "Gold", "rules.levels.2.min_spend": "-5"})
    posted = rules_forms.from_form("tiers", values)
    levels = json.loads(posted.text)["levels"]
    assert [level["name"] for level in levels] == ["Member", "Gold"]
    with pytest.raises(RulesError) as caught:
        validate_rules("tiers", json.loads(posted.text))
    fields = [posted.field("rules." + e["field"]) for e in caught.value.errors]
    assert fields == ["rules.levels.2.min_spend"]
    assert "rules.levels.2.min_spend" in rules_forms.field_names("tiers", values)
    assert rules_forms.row_indices("tiers", values)["levels"] == [0, 2, 3]


def test_only_the_chosen_modes_fields_are_sent() -> None:
    values = rules_forms.to_form("points", FULL["points"])
    values["rules.expiry.mode"] = "none"  # months and warning days still filled in
    assert json.loads(rules_forms.from_form("points", values).text)["expiry"] == {"mode": "none"}


def test_the_advanced_json_wins_and_bad_json_is_left_for_the_validation() -> None:
    values = rules_forms.to_form("points", MINIMAL["points"])
    values["rules"] = '{"amount_per_point": "7", "multipliers": []}'
    assert json.loads(rules_forms.from_form("points", values).text)["amount_per_point"] == "7"
    values["rules"] = "{not json"
    assert rules_forms.from_form("points", values).text == "{not json"
    values["rules"] = "[1, 2]"
    assert rules_forms.from_form("points", values).text == "[1, 2]"


def test_a_blank_required_field_is_reported_as_required() -> None:
    values = rules_forms.to_form("stamps", MINIMAL["stamps"])
    values["rules.goal"] = ""
    with pytest.raises(RulesError) as caught:
        validate_rules("stamps", json.loads(rules_forms.from_form("stamps", values).text))
    assert caught.value.errors == [{"field": "goal", "message": "This field is required."}]


def test_unticked_checkboxes_mean_false() -> None:
    values = rules_forms.to_form("membership", FULL["membership"])
    del values["rules.paid"]
    values["rules.price"] = ""
    rules = normalised("membership", json.loads(rules_forms.from_form("membership", values).text))
    assert rules["paid"] is False
    assert rules["price"] is None
