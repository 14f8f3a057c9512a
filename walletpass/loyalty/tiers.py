"""Tiers by qualifying spend: which level a spend reaches, what is missing, reviews."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from walletpass.loyalty.expiry import add_months
from walletpass.loyalty.rules import LifetimeWindow, RollingWindow, TierLevel, TiersRules

__all__ = [
    "earn_multiplier_for",
    "level_named",
    "next_tier",
    "qualifying_spend",
    "tier_after_review",
    "tier_for_spend",
]


def tier_for_spend(rules: TiersRules, spend: Decimal) -> TierLevel | None:
    """The highest level whose ``min_spend`` the spend reaches.

    :param rules: tiers rules (levels sorted by ``min_spend``, as validation guarantees).
    :param spend: qualifying spend.
    :return: the level, or None when the first level starts above 0 and is not reached.
    """
    reached = None
    for level in rules.levels:
        if spend >= level.min_spend:
            reached = level
    return reached


def next_tier(rules: TiersRules, spend: Decimal) -> tuple[TierLevel, Decimal] | None:
    """The next level up and the spend still missing to reach it.

    :param rules: tiers rules.
    :param spend: qualifying spend.
    :return: ``(level, missing)``, or None at the top level.
    """
    for level in rules.levels:
        if spend < level.min_spend:
            return level, level.min_spend - spend
    return None


def level_named(rules: TiersRules, name: str | None) -> TierLevel | None:
    """The level called ``name`` (case-insensitive, as names are unique that way).

    :param rules: tiers rules.
    :param name: a member's stored tier; None or a name no longer in the rules gives None.
    """
    if name is None:
        return None
    for level in rules.levels:
        if level.name.casefold() == name.casefold():
            return level
    return None


def earn_multiplier_for(rules: TiersRules, name: str | None) -> Decimal:
    """The earn multiplier of a member's tier, 1 without a tier.

    :param rules: tiers rules.
    :param name: the member's stored tier.
    """
    level = level_named(rules, name)
    return level.earn_multiplier if level else Decimal(1)


def qualifying_spend(
    entries: Iterable[tuple[datetime, Decimal]],
    window: LifetimeWindow | RollingWindow,
    now: datetime,
) -> Decimal:
    """Spend that counts towards a tier: everything, or the last ``months`` months.

    Refunds count as negative amounts. A rolling window is ``(now - months, now]``: a
    purchase exactly ``months`` old no longer counts. Entries after ``now`` are ignored.

    :param entries: ``(at, amount)`` per purchase or refund, aware datetimes.
    :param window: the program's ``window`` rule.
    :param now: the current time (aware).
    """
    start = add_months(now, -window.months) if isinstance(window, RollingWindow) else None
    total = Decimal(0)
    for at, amount in entries:
        if at <= now and (start is None or at > start):
            total += amount
    return total


def tier_after_review(
    rules: TiersRules,
    current: str | None,
    spend: Decimal,
    now: datetime,
    window_end: datetime | None,
) -> TierLevel | None:
    """The member's tier after looking at their qualifying spend.

    Upgrades apply at once. A lower qualifying spend only downgrades with
    ``downgrade.mode == "end_of_window"`` and once ``now`` has reached ``window_end`` (the
    member's review date); otherwise the current tier is kept. A stored tier that is no
    longer among the levels counts as no tier.

    :param rules: tiers rules.
    :param current: the member's stored tier name, or None.
    :param spend: qualifying spend (see :func:`qualifying_spend`).
    :param now: the current time (aware).
    :param window_end: the end of the member's current qualification window; None: no
        review is due.
    """
    qualified = tier_for_spend(rules, spend)
    held = level_named(rules, current)
    if held is None:
        return qualified
    rank = {level.name: i for i, level in enumerate(rules.levels)}
    qualified_rank = rank[qualified.name] if qualified else -1
    if qualified_rank >= rank[held.name]:
        return qualified
    review_due = window_end is not None and now >= window_end
    if rules.downgrade.mode == "end_of_window" and review_due:
        return qualified
    return held
