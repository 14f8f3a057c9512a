"""Program rules: one pydantic model per program kind, and their validation into field errors.

``Program.rules`` is stored as ``validate_rules(kind, raw).model_dump(mode="json")``: money
and factors as decimal strings (``"1.00"``), dates as ISO strings, times as ``"HH:MM"``.
Everything here is pure: no Flask, no database.
"""

import difflib
import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from walletpass.i18n.formats import AmountError, check_amount
from walletpass.i18n.merchant_texts import by_language, localised
from walletpass.loyalty.amounts import amount_problem

__all__ = [
    "KINDS",
    "CategoryMultiplier",
    "Downgrade",
    "Expiry",
    "IntermediateReward",
    "LifetimeWindow",
    "LotExpiry",
    "MembershipRules",
    "Multiplier",
    "NoExpiry",
    "OffersRules",
    "PointsBonuses",
    "PointsRules",
    "ProgramRules",
    "Referral",
    "RollingExpiry",
    "RollingWindow",
    "RulesError",
    "StampsBonuses",
    "StampsRules",
    "TierLevel",
    "TierWindow",
    "TiersRules",
    "WindowMultiplier",
    "parse_time",
    "validate_rules",
]


class RulesError(ValueError):
    """Rules that do not validate; ``errors`` holds one ``{"field", "message"}`` per problem.

    ``field`` is a dotted path relative to the rules object (``"multipliers.0.factor"``,
    ``"levels.2.min_spend"``); ``""`` means the rules object itself.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field'] or 'rules'}: {e['message']}" for e in errors))


def _error(message: str) -> PydanticCustomError:
    # The message goes through the context, not the template, so braces in it are harmless.
    return PydanticCustomError("rule", "{message}", {"message": message})


def _errors_at(title: str, problems: list[tuple[tuple[str | int, ...], str]]) -> ValidationError:
    """Several errors at precise locations, raised from one validator.

    pydantic prefixes these locations with the validated field's own, so a check on the
    ``levels`` list can point at ``levels.2.min_spend`` rather than at the whole list.
    """
    return ValidationError.from_exception_data(
        title,
        [InitErrorDetails(type=_error(msg), loc=loc, input=None) for loc, msg in problems],
    )


def _reject_bool(value: Any) -> Any:
    # pydantic's lax mode reads True as 1; in a rules form that is always a mistake.
    if isinstance(value, bool):
        raise _error("Must be a number, not true or false.")
    return value


_NoBool = BeforeValidator(_reject_bool)
_MAX_MONEY = Decimal("1000000000")

Money = Annotated[Decimal, _NoBool, Field(ge=0, le=_MAX_MONEY, decimal_places=4)]
PositiveMoney = Annotated[Decimal, _NoBool, Field(gt=0, le=_MAX_MONEY, decimal_places=4)]
Percent = Annotated[Decimal, _NoBool, Field(ge=0, le=100, decimal_places=2)]
# Square caps promotions at 10x; a bigger factor is almost always a typo (20 for 2.0).
Factor = Annotated[Decimal, _NoBool, Field(gt=1, le=10, decimal_places=2)]
Months = Annotated[int, _NoBool, Field(ge=1, le=120)]
Points = Annotated[int, _NoBool, Field(ge=0, le=1_000_000)]
Name = Annotated[str, Field(min_length=1, max_length=100)]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")


def parse_time(value: str) -> int:
    """Minutes since midnight for an ``"HH:MM"`` string (``"24:00"`` is 1440, end of day).

    :param value: a time as stored in the rules.
    :raise ValueError: if ``value`` is not a valid ``HH:MM`` time.
    """
    match = _TIME.fullmatch(value)
    if not match:
        raise ValueError(f"not a HH:MM time: {value!r}")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"not a HH:MM time: {value!r}")
    return hours * 60 + minutes


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- expiry ---------------------------------------------------------------------------------


class NoExpiry(_Rules):
    """Points or stamps never expire."""

    mode: Literal["none"]


class _ExpiryWithWarning(_Rules):
    months: Months
    # 0 disables the warning; otherwise members are told this many days before expiry.
    warn_days: Annotated[int, _NoBool, Field(ge=0, le=365)] = 0

    @model_validator(mode="after")
    def _warning_fits(self) -> "_ExpiryWithWarning":
        # The shortest month count is 28 days long: a longer warning would fire before earning.
        if self.warn_days >= self.months * 28:
            raise _errors_at(
                type(self).__name__,
                [
                    (
                        ("warn_days",),
                        f"Must be shorter than the expiry period of {self.months} month(s).",
                    )
                ],
            )
        return self


class LotExpiry(_ExpiryWithWarning):
    """Each earn is a lot expiring ``months`` after it was earned; spending uses oldest first."""

    mode: Literal["lots"]


class RollingExpiry(_ExpiryWithWarning):
    """The whole balance expires ``months`` after the member's last activity."""

    mode: Literal["rolling"]


def _expiry_shorthand(value: Any) -> Any:
    # null and "none" are what a form or a hand-written JSON naturally sends for "no expiry".
    if value is None or value == "none":
        return {"mode": "none"}
    return value


Expiry = Annotated[
    NoExpiry | LotExpiry | RollingExpiry,
    BeforeValidator(_expiry_shorthand),
    Field(discriminator="mode"),
]


# --- multipliers ------------------------------------------------------------------------------


class CategoryMultiplier(_Rules):
    """``factor`` applies to the amounts of the purchase lines in one of ``categories``."""

    kind: Literal["category"]
    name: Name | None = None
    categories: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=50
    )
    factor: Factor

    @field_validator("categories")
    @classmethod
    def _normalise_categories(cls, value: list[str]) -> list[str]:
        # Tills send "Coffee", "coffee ", "COFFEE": categories match case-insensitively.
        lowered = [c.strip().lower() for c in value]
        duplicates = [(i,) for i, c in enumerate(lowered) if c in lowered[:i]]
        if duplicates:
            raise _errors_at("categories", [(loc, "Duplicate category.") for loc in duplicates])
        return lowered

    def label(self) -> str:
        """A short description for receipts and the ledger."""
        return self.name or f"{', '.join(self.categories)} x{self.factor}"


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class WindowMultiplier(_Rules):
    """``factor`` applies to the whole purchase on ``days`` between ``start`` and ``end``.

    Times are local to the merchant's time zone; ``start`` is inclusive and ``end`` exclusive
    (16:00-18:00 covers 16:00:00 up to 17:59:59). Windows do not cross midnight: use
    ``"24:00"`` as the end of the day and a second window for the morning after.
    ``valid_from`` / ``valid_until`` are inclusive local dates.
    """

    kind: Literal["window"]
    name: Name | None = None
    days: list[Annotated[Weekday, BeforeValidator(_lower)]] = Field(min_length=1, max_length=7)
    start: str
    end: str
    factor: Factor
    valid_from: date | None = None
    valid_until: date | None = None

    @field_validator("days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        duplicates = [(i,) for i, d in enumerate(value) if d in value[:i]]
        if duplicates:
            raise _errors_at("days", [(loc, "Duplicate day.") for loc in duplicates])
        return value

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str, info: ValidationInfo) -> str:
        try:
            minutes = parse_time(value)
        except ValueError:
            raise _error('Must be a time as "HH:MM", e.g. "16:00".') from None
        if info.field_name == "start" and minutes == 24 * 60:
            raise _error('A window cannot start at "24:00"; it can only end there.')
        # A field validator rather than a model one, so that this is reported even when some
        # other field of the multiplier is wrong too.
        start = info.data.get("start")
        if info.field_name == "end" and start is not None and minutes <= parse_time(start):
            raise _error(
                f"Must be later than the start ({start}); windows cannot cross midnight: "
                'end at "24:00" and add a second window for the morning.'
            )
        return value

    @field_validator("valid_until")
    @classmethod
    def _dates_ordered(cls, value: date | None, info: ValidationInfo) -> date | None:
        valid_from = info.data.get("valid_from")
        if value is not None and valid_from is not None and value < valid_from:
            raise _error("Must not be before valid_from.")
        return value

    def label(self) -> str:
        """A short description for receipts and the ledger."""
        return self.name or f"{'/'.join(self.days)} {self.start}-{self.end} x{self.factor}"


Multiplier = Annotated[CategoryMultiplier | WindowMultiplier, Field(discriminator="kind")]


# --- bonuses ----------------------------------------------------------------------------------


class Referral(_Rules):
    """Points for both sides, paid once the referee makes a first purchase."""

    referrer: Points = 0
    referee: Points = 0


class PointsBonuses(_Rules):
    """One-off points: on joining, on the birthday (month or day), for a referral."""

    welcome: Points = 0
    birthday: Points = 0
    birthday_mode: Literal["month", "day"] = "month"
    referral: Referral = Field(default_factory=Referral)


class StampsBonuses(_Rules):
    """Stamps given on joining."""

    welcome: Annotated[int, _NoBool, Field(ge=0, le=49)] = 0


# --- program kinds ----------------------------------------------------------------------------


class PointsRules(_Rules):
    """A point per ``amount_per_point`` spent, rounded once per purchase."""

    kind: ClassVar[str] = "points"

    amount_per_point: PositiveMoney
    rounding: Literal["floor", "half_up"] = "floor"
    min_spend: Money = Decimal(0)
    # The value of one point when points pay part of a purchase; None: no partial redemption.
    points_to_currency: PositiveMoney | None = None
    max_redeem_percent: (
        Annotated[Decimal, _NoBool, Field(gt=0, le=100, decimal_places=2)] | None
    ) = None
    multipliers: list[Multiplier] = Field(default_factory=list, max_length=20)
    # False: only the single best promotion applies to a purchase (Square's behaviour).
    stack_multipliers: bool = False
    bonuses: PointsBonuses = Field(default_factory=PointsBonuses)
    expiry: Expiry = Field(default_factory=lambda: NoExpiry(mode="none"))

    @field_validator("max_redeem_percent")
    @classmethod
    def _needs_point_value(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        # Only judge when points_to_currency itself validated; its own error is already reported.
        if (
            value is not None
            and "points_to_currency" in info.data
            and info.data["points_to_currency"] is None
        ):
            raise _error("Only applies when points_to_currency is set.")
        return value


TierName = Annotated[str, Field(min_length=1, max_length=64)]


class TierLevel(_Rules):
    """A tier reached at ``min_spend`` qualifying spend.

    ``name`` is in the merchant's default language and is what ``Member.tier`` stores;
    ``names`` gives it in other languages (``{"el": "Χρυσό"}``), shown to the members who
    read them (walletpass.i18n.merchant_texts.localised).
    """

    name: TierName
    min_spend: Money
    discount_percent: Percent = Decimal(0)
    earn_multiplier: Annotated[Decimal, _NoBool, Field(ge=1, le=10, decimal_places=2)] = Decimal(1)
    names: dict[str, TierName] = Field(default_factory=dict)

    @field_validator("names", mode="before")
    @classmethod
    def _our_languages(cls, value: Any) -> Any:
        # zh-TW is stored as zh-Hant; a language we do not speak is refused.
        if not isinstance(value, dict):
            return value
        try:
            return by_language(value)
        except ValueError as exc:
            raise _error(str(exc)) from None

    @model_serializer(mode="wrap")
    def _without_empty_names(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Rules stored before tiers had names read back unchanged: no "names": {} added.
        dumped: dict[str, Any] = handler(self)
        if not dumped.get("names"):
            dumped.pop("names", None)
        return dumped

    def name_in(self, lang: str | None) -> str:
        """The tier's name for a reader of ``lang``: its own, or the default one."""
        return localised(self.name, {k: {"name": v} for k, v in self.names.items()}, "name", lang)


class LifetimeWindow(_Rules):
    """Qualifying spend is everything ever spent (net of refunds)."""

    mode: Literal["lifetime"]


class RollingWindow(_Rules):
    """Qualifying spend is what was spent in the last ``months`` months."""

    mode: Literal["rolling"]
    months: Months


TierWindow = Annotated[LifetimeWindow | RollingWindow, Field(discriminator="mode")]


class Downgrade(_Rules):
    """``never``: a tier once reached is kept; ``end_of_window``: re-assessed at each review."""

    mode: Literal["never", "end_of_window"] = "never"


class TiersRules(PointsRules):
    """Points plus levels by qualifying spend, each with a discount and an earn multiplier."""

    kind: ClassVar[str] = "tiers"

    levels: list[TierLevel] = Field(min_length=1, max_length=20)
    window: TierWindow = Field(default_factory=lambda: LifetimeWindow(mode="lifetime"))
    downgrade: Downgrade = Field(default_factory=Downgrade)

    @field_validator("levels")
    @classmethod
    def _levels_ordered(cls, levels: list[TierLevel]) -> list[TierLevel]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: set[str] = set()
        for i, level in enumerate(levels):
            # Member.tier stores the name: two levels that differ only by case would collide.
            if level.name.casefold() in seen:
                problems.append(((i, "name"), f"Duplicate level name {level.name!r}."))
            seen.add(level.name.casefold())
            if i and level.min_spend <= levels[i - 1].min_spend:
                problems.append(
                    (
                        (i, "min_spend"),
                        f"Must be greater than the previous level's min_spend "
                        f"({levels[i - 1].min_spend}); list levels from lowest to highest.",
                    )
                )
        if problems:
            raise _errors_at("levels", problems)
        return levels


class IntermediateReward(_Rules):
    """A reward reached on the way to the goal, e.g. a free cookie at 5 stamps."""

    at: Annotated[int, _NoBool, Field(ge=1)]
    name: Name


class StampsRules(_Rules):
    """Buy ``goal`` times, get ``reward_name``; the card then starts over."""

    kind: ClassVar[str] = "stamps"

    # Declared first so that the checks below can compare against it.
    goal: Annotated[int, _NoBool, Field(ge=2, le=50)]
    stamps_per_visit: Annotated[int, _NoBool, Field(ge=1)] = 1
    min_spend: Money = Decimal(0)
    reward_name: Name
    intermediate_rewards: list[IntermediateReward] = Field(default_factory=list, max_length=49)
    expiry: Expiry = Field(default_factory=lambda: NoExpiry(mode="none"))
    bonuses: StampsBonuses = Field(default_factory=StampsBonuses)

    @field_validator("stamps_per_visit")
    @classmethod
    def _per_visit_fits(cls, value: int, info: ValidationInfo) -> int:
        goal = info.data.get("goal")
        if goal is not None and value > goal:
            raise _error(f"Must not exceed the goal ({goal}).")
        return value

    @field_validator("intermediate_rewards")
    @classmethod
    def _rewards_ordered(
        cls, rewards: list[IntermediateReward], info: ValidationInfo
    ) -> list[IntermediateReward]:
        goal = info.data.get("goal")
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, reward in enumerate(rewards):
            if goal is not None and reward.at >= goal:
                problems.append(((i, "at"), f"Must be less than the goal ({goal})."))
            elif i and reward.at <= rewards[i - 1].at:
                problems.append(
                    (
                        (i, "at"),
                        f"Must be greater than the previous reward's ({rewards[i - 1].at}).",
                    )
                )
        if problems:
            raise _errors_at("intermediate_rewards", problems)
        return rewards

    @field_validator("bonuses")
    @classmethod
    def _welcome_fits(cls, bonuses: StampsBonuses, info: ValidationInfo) -> StampsBonuses:
        goal = info.data.get("goal")
        if goal is not None and bonuses.welcome >= goal:
            raise _errors_at("bonuses", [(("welcome",), f"Must be less than the goal ({goal}).")])
        return bonuses


class MembershipRules(_Rules):
    """A club card valid ``validity_months`` from joining (free) or from each recorded
    payment (paid: pending until the first one); no balance.

    ``benefits`` is what the card gives, shown on the join page, the card and the till;
    ``reminder_days`` before the end the card says so (0: no reminder). Automatic renewal
    applies to a free membership only: a paid one renews when a payment is recorded.
    """

    kind: ClassVar[str] = "membership"

    paid: bool = False
    price: PositiveMoney | None = Field(default=None, validate_default=True)
    validity_months: Months = 12
    renewal: Literal["manual", "auto"] = "manual"
    benefits: str = Field(default="", max_length=500)
    reminder_days: Annotated[int, _NoBool, Field(ge=0, le=90)] = 14

    @field_validator("price")
    @classmethod
    def _price_matches_paid(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        paid = info.data.get("paid")
        if paid and value is None:
            raise _error("Required for a paid membership.")
        if paid is False and value is not None:
            raise _error("Only a paid membership has a price: set paid to true or remove it.")
        return value


class OffersRules(_Rules):
    """Coupons only: no balance; a redeemed coupon pass can roll over to the next offer."""

    kind: ClassVar[str] = "offers"

    rollover: bool = True


ProgramRules = PointsRules | StampsRules | TiersRules | MembershipRules | OffersRules

_MODELS: dict[str, type[_Rules]] = {
    "points": PointsRules,
    "stamps": StampsRules,
    "tiers": TiersRules,
    "membership": MembershipRules,
    "offers": OffersRules,
}
KINDS: tuple[str, ...] = tuple(_MODELS)

# Fields that only make sense with a balance: named in the error for membership and offers.
_BALANCE_FIELDS = (
    (set(TiersRules.model_fields) | set(StampsRules.model_fields))
    - set(MembershipRules.model_fields)
    - set(OffersRules.model_fields)
)

# Discriminated unions put the chosen tag into error locations ("expiry.lots.months"); the
# API and the admin form want the path of the JSON as sent ("expiry.months").
_UNION_TAGS: dict[str, set[str]] = {
    "expiry": {"none", "lots", "rolling"},
    "window": {"lifetime", "rolling"},
    "multipliers": {"category", "window"},
}


def _path(loc: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for k, item in enumerate(loc):
        parent = loc[k - 1] if k >= 1 else None
        if k >= 2 and isinstance(parent, int) and loc[k - 2] == "multipliers":
            parent = "multipliers"
        elif parent == "multipliers":
            parent = None  # "multipliers.<tag>" would be the list itself, not one item
        if isinstance(parent, str) and item in _UNION_TAGS.get(parent, ()):
            continue
        parts.append(str(item))
    return ".".join(parts)


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


# pydantic's error types, in the words the admin form and the API show.
_PLAIN_MESSAGES = {
    "missing": "This field is required.",
    "int_type": "Must be a whole number.",
    "int_parsing": "Must be a whole number.",
    "int_from_float": "Must be a whole number.",
    "decimal_type": 'Must be a number, e.g. "1.00".',
    "decimal_parsing": 'Must be a number, e.g. "1.00".',
    "finite_number": "Must be a finite number.",
    "bool_type": "Must be true or false.",
    "bool_parsing": "Must be true or false.",
    "string_type": "Must be a text.",
    "list_type": "Must be a list.",
    "date_type": 'Must be a date as "YYYY-MM-DD".',
    "date_parsing": 'Must be a date as "YYYY-MM-DD".',
    "date_from_datetime_parsing": 'Must be a date as "YYYY-MM-DD".',
    "date_from_datetime_inexact": 'Must be a date as "YYYY-MM-DD".',
    "model_type": "Must be an object.",
    "model_attributes_type": "Must be an object.",
    "dict_type": "Must be an object.",
    "string_too_short": "Must not be empty.",
}
# Filled from the error's context (its ``ctx``).
_CONTEXT_MESSAGES = {
    "greater_than": "Must be greater than {gt}.",
    "greater_than_equal": "Must be at least {ge}.",
    "less_than": "Must be less than {lt}.",
    "less_than_equal": "Must be at most {le}.",
    "decimal_max_places": "Must have at most {decimal_places} decimal places.",
    "string_too_long": "Must be at most {max_length} characters long.",
    "too_short": "Must have at least {min_length} item(s).",
    "too_long": "Must have at most {max_length} items.",
    "literal_error": "Must be {expected}.",
    "union_tag_not_found": "Missing {discriminator}.",
}


def _message(err: Any, kind: str, field: str) -> str:
    etype, ctx = err["type"], err.get("ctx") or {}
    if etype == "rule":
        return str(ctx["message"])
    if etype == "extra_forbidden":
        return _unknown_field_message(kind, field)
    if etype in _PLAIN_MESSAGES:
        return _PLAIN_MESSAGES[etype]
    if etype in _CONTEXT_MESSAGES:
        return _CONTEXT_MESSAGES[etype].format(**ctx)
    if etype == "union_tag_invalid":
        key = str(ctx["discriminator"]).strip("'")
        return f"Unknown {key} {ctx['tag']!r}: expected {ctx['expected_tags']}."
    # Anything unmapped still carries pydantic's own, readable enough, sentence.
    return str(err["msg"]).removeprefix("Value error, ")


def _unknown_field_message(kind: str, field: str) -> str:
    if "." not in field and field in _BALANCE_FIELDS and kind in ("membership", "offers"):
        return f"{_a(kind).capitalize()} program has no points or stamps: remove this field."
    if "." not in field:
        close = difflib.get_close_matches(field, _MODELS[kind].model_fields, n=1)
        if close:
            return f"Unknown field for {_a(kind)} program; did you mean {close[0]!r}?"
    return f"Unknown field for {_a(kind)} program."


def _amounts(parsed: _Rules) -> list[tuple[str, Decimal | None]]:
    """The rules' amounts of money, by their path in the JSON."""
    found: list[tuple[str, Decimal | None]] = []
    if isinstance(parsed, PointsRules):
        found += [
            ("amount_per_point", parsed.amount_per_point),
            ("min_spend", parsed.min_spend),
            ("points_to_currency", parsed.points_to_currency),
        ]
    if isinstance(parsed, TiersRules):
        found += [
            (f"levels.{i}.min_spend", level.min_spend) for i, level in enumerate(parsed.levels)
        ]
    if isinstance(parsed, StampsRules):
        found.append(("min_spend", parsed.min_spend))
    if isinstance(parsed, MembershipRules):
        found.append(("price", parsed.price))
    return found


def amount_problems(parsed: ProgramRules, currency: str, lang: str) -> list[dict[str, str]]:
    """The rules' amounts the shop's currency cannot hold, by their path, with the reason
    in ``lang``: what the admin's form shows under each (the API's are
    :func:`validate_rules`' with ``currency``)."""
    found = []
    for field, amount in _amounts(parsed):
        problem = amount_problem(amount, currency, lang)
        if problem is not None:
            found.append({"field": field, "message": problem})
    return found


def validate_rules(kind: str, raw: Any, currency: str | None = None) -> ProgramRules:
    """Validate a program's rules for its kind.

    Every problem is reported at once, one entry per bad rule. Store the result as
    ``validate_rules(kind, raw).model_dump(mode="json")``; re-validating stored rules gives an
    equal model.

    :param kind: the program kind: ``points``, ``stamps``, ``tiers``, ``membership``, ``offers``.
    :param raw: the rules as decoded JSON; ``None`` is read as ``{}``.
    :param currency: the shop's, when its rules are being set: an amount it cannot hold
        (a TWD tier threshold of 999.5) is refused. Stored rules are read without it.
    :raise RulesError: with ``errors`` listing ``{"field": <dotted path>, "message": ...}``.
    """
    model = _MODELS.get(kind)
    if model is None:
        expected = ", ".join(KINDS)
        raise RulesError(
            [{"field": "kind", "message": f"Unknown program kind {kind!r}: expected {expected}."}]
        )
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RulesError([{"field": "", "message": "Rules must be a JSON object."}])
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            field = _path(err["loc"])
            errors.append({"field": field, "message": _message(err, kind, field)})
        raise RulesError(errors) from None
    if currency is not None:
        problems = []
        for field, amount in _amounts(parsed):
            try:
                if amount is not None:
                    check_amount(amount, currency)
            except AmountError as exc:
                problems.append({"field": field, "message": f"{exc}."})
        if problems:
            raise RulesError(problems)
    return parsed  # type: ignore[return-value]
