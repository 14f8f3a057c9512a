"""The reward catalogue: what a member can redeem now (balance, tier, stock, dates) and
the redemption of a reward for points or stamps, with its code."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from walletpass import errors
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.loyalty import rules
from walletpass.loyalty.ledger import Actor, Change, lock_member, post, replay_for
from walletpass.loyalty.models import (
    LedgerEntry,
    Member,
    Program,
    ProgramKind,
    Reward,
    RewardKind,
    RewardRedemption,
)
from walletpass.loyalty.programs import membership_problem, membership_standing, program_rules
from walletpass.passes.changes import mark_changed


@dataclass(frozen=True, slots=True)
class CatalogueReward:
    """A reward as the catalogue lists it for a member: read with Core (every till scan
    answers with what is redeemable), not loaded as a live row."""

    id: int
    name: str
    kind: str
    cost_points: int
    min_tier: str | None
    stock: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    card_stamps: int | None
    # The name in the merchant's other languages (walletpass.i18n.merchant_texts).
    translations: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def on_the_way(self) -> bool:
        """A stamp card's intermediate reward: given, not bought (see :func:`card_rewards`)."""
        return _on_the_way(self)


_REWARDS = Reward.__table__
# In CatalogueReward's field order, so a row builds one positionally.
CATALOGUE_COLUMNS = tuple(_REWARDS.c[f.name] for f in fields(CatalogueReward))


def active_catalogue(program_id: Any, merchant_id: Any) -> ColumnElement[bool]:
    """The condition for a program's active rewards, scoped to its merchant explicitly
    (Core statements do not get the session's tenant filter)."""
    return (
        (_REWARDS.c.program_id == program_id)
        & (_REWARDS.c.merchant_id == merchant_id)
        & _REWARDS.c.active.is_(True)
    )


# Built once: every scan answers with what is redeemable now. Rewards of the same cost
# in the order they were made: without the tie-break PostgreSQL returns them in any order,
# and a card listing them ("Espresso and Baklava") would change with no change made.
_ACTIVE_REWARDS = (
    select(*CATALOGUE_COLUMNS)
    .where(active_catalogue(bindparam("program_id"), bindparam("merchant_id")))
    .order_by(_REWARDS.c.cost_points, _REWARDS.c.id)
)


def catalogue_rows(session: Session, member: Member) -> Sequence[Row[Any]]:
    """The member's program's active rewards, cheapest first, as CATALOGUE_COLUMNS rows.
    Flushes first, so a reward redeemed in this unit of work shows its new stock."""
    session.flush()
    return (
        session.connection()
        .execute(
            _ACTIVE_REWARDS, {"program_id": member.program_id, "merchant_id": member.merchant_id}
        )
        .all()
    )


# -- a stamp card's own rewards ----------------------------------------------------------


def card_rewards(parsed: rules.StampsRules) -> list[tuple[int, str, int]]:
    """A stamp card's own rewards as ``(stamps, name, cost)``, cheapest place first.

    The goal's reward costs the goal's stamps: redeeming it starts the card over, and the
    stamps beyond the goal stay on the new card. An intermediate reward costs nothing: the
    card goes on to its goal, and the reward is given once for each time the stamps pass
    its place (on every card), as :func:`walletpass.loyalty.earning.stamp_rewards_reached`
    announces it.
    """
    found = [(r.at, r.name, 0) for r in parsed.intermediate_rewards]
    return [*found, (parsed.goal, parsed.reward_name, parsed.goal)]


def sync_card_rewards(session: Session, program: Program) -> None:
    """Keep ``program``'s catalogue rows for its stamp card's own rewards (keyed by
    ``Reward.card_stamps``) as its rules say: renamed, repriced, added, and deactivated
    (never deleted: redemptions point at them) when the rules drop them or the program is
    no stamp card. Every path that saves a program's rules calls this."""
    session.flush()
    rows = {
        r.card_stamps: r
        for r in session.scalars(
            select(Reward).where(Reward.program_id == program.id, Reward.card_stamps.is_not(None))
        )
    }
    parsed = program_rules(program) if program.kind == ProgramKind.STAMPS else None
    wanted = card_rewards(parsed) if isinstance(parsed, rules.StampsRules) else []
    for stamps, name, cost in wanted:
        row = rows.pop(stamps, None)
        if row is None and cost:
            row = _adopted_goal_reward(session, program, cost)
        if row is None:
            row = Reward(merchant_id=program.merchant_id, program_id=program.id)
            session.add(row)
        row.card_stamps, row.name, row.cost_points, row.active = stamps, name, cost, True
    for row in rows.values():
        row.active = False
    session.flush()


def _adopted_goal_reward(session: Session, program: Program, cost: int) -> Reward | None:
    # Before the card's rewards were rows, a merchant added the goal's reward by hand at
    # the goal's cost: that row becomes it, rather than the till listing it twice.
    return session.scalars(
        select(Reward)
        .where(
            Reward.program_id == program.id,
            Reward.card_stamps.is_(None),
            Reward.cost_points == cost,
            Reward.active.is_(True),
        )
        .order_by(Reward.id)
        .limit(1)
    ).first()


def _on_the_way(reward: Reward | CatalogueReward) -> bool:
    return reward.card_stamps is not None and reward.cost_points == 0


def _card_places_left(
    session: Session, program: Program, member: Member, places: Sequence[Reward | CatalogueReward]
) -> dict[int, int]:
    """How many times the member may still have each intermediate reward of ``places``
    (by reward id): the times the stamps passed its place, counting the stamps the goal's
    redemptions took off, less the times it was given (a redemption undone gives it back)."""
    parsed = program_rules(program)
    assert isinstance(parsed, rules.StampsRules)
    undo = aliased(LedgerEntry)
    undone = (
        select(undo.id)
        .where(undo.member_id == member.id, undo.reverses_id == RewardRedemption.ledger_entry_id)
        .exists()
    )
    given = session.execute(
        select(
            RewardRedemption.reward_id,
            Reward.cost_points,
            func.count(),
            func.sum(LedgerEntry.stamps),
        )
        .join(LedgerEntry, LedgerEntry.id == RewardRedemption.ledger_entry_id)
        .join(Reward, Reward.id == RewardRedemption.reward_id)
        .where(RewardRedemption.member_id == member.id, Reward.card_stamps.is_not(None), ~undone)
        .group_by(RewardRedemption.reward_id, Reward.cost_points)
    ).all()
    # Every stamp the member ever had on a card, the completed ones included.
    stamps = member.stamps_balance - sum(taken or 0 for _, cost, _, taken in given if cost)
    times_given = {reward_id: count for reward_id, _, count, _ in given}
    left = {}
    for place in places:
        assert place.card_stamps is not None
        passed = (
            (stamps - place.card_stamps) // parsed.goal + 1 if stamps >= place.card_stamps else 0
        )
        left[place.id] = passed - times_given.get(place.id, 0)
    return left


# -- what a member can redeem --------------------------------------------------------------


def redeemable_rewards(
    session: Session, member: Member, now: datetime | None = None
) -> list[CatalogueReward]:
    """Rewards this member could redeem right now (balance, tier, stock, dates)."""
    return redeemable_among(session, member, catalogue_rows(session, member), now)


def redeemable_among(
    session: Session,
    member: Member,
    rows: Iterable[Sequence[Any]],
    now: datetime | None = None,
) -> list[CatalogueReward]:
    """The rewards of ``rows`` (CATALOGUE_COLUMNS, as :func:`catalogue_rows` reads them)
    this member could redeem right now."""
    now = now or utcnow()
    program = session.get(Program, member.program_id)
    assert program is not None
    found = []
    for row in rows:
        reward = CatalogueReward(*row)
        if _reward_problem(program, member, reward, now) is None:
            found.append(reward)
    on_the_way = [r for r in found if r.on_the_way]
    if on_the_way:
        # Only a stamp card with intermediate rewards asks what was given already.
        left = _card_places_left(session, program, member, on_the_way)
        found = [r for r in found if not r.on_the_way or left[r.id] > 0]
    return found


def _reward_problem(
    program: Program, member: Member, reward: Reward | CatalogueReward, now: datetime
) -> errors.WalletpassError | None:
    # The kind first: this runs for every reward on every till scan.
    is_membership = program.kind == ProgramKind.MEMBERSHIP
    standing = membership_standing(program, member, now) if is_membership else None
    if standing is not None and not standing.in_force:
        # A member's rewards are a benefit of a paid-up membership: none while it is
        # pending or lapsed, and the till is told why.
        return errors.MembershipInactive(membership_problem(standing))
    if not reward.active:
        return errors.RewardUnavailable(f"reward {reward.name!r} is not active")
    if reward.valid_from and now < reward.valid_from:
        return errors.RewardUnavailable(
            f"reward {reward.name!r} starts {reward.valid_from:%Y-%m-%d}"
        )
    if reward.valid_until and now > reward.valid_until:
        return errors.RewardUnavailable(
            f"reward {reward.name!r} ended {reward.valid_until:%Y-%m-%d}"
        )
    if reward.stock is not None and reward.stock <= 0:
        return errors.RewardUnavailable(f"reward {reward.name!r} is out of stock")
    if reward.min_tier:
        parsed = program_rules(program)
        if not isinstance(parsed, rules.TiersRules) or not _tier_at_least(
            parsed, member.tier, reward.min_tier
        ):
            return errors.RewardUnavailable(
                f"reward {reward.name!r} needs tier {reward.min_tier} (member is "
                f"{member.tier or 'untiered'})"
            )
    balance = member.stamps_balance if program.kind == ProgramKind.STAMPS else member.points_balance
    if balance < reward.cost_points:
        unit = "stamps" if program.kind == ProgramKind.STAMPS else "points"
        return errors.InsufficientPoints(
            f"{reward.name!r} costs {reward.cost_points} {unit}; balance is {balance}",
            balance=balance,
            cost=reward.cost_points,
        )
    return None


def _place_problem(
    session: Session, program: Program, member: Member, reward: Reward
) -> errors.WalletpassError | None:
    if _card_places_left(session, program, member, [reward])[reward.id] > 0:
        return None
    if member.stamps_balance < (reward.card_stamps or 0):
        return errors.InsufficientPoints(
            f"{reward.name!r} is reached at {reward.card_stamps} stamps; the card has "
            f"{member.stamps_balance}",
            balance=member.stamps_balance,
            cost=reward.card_stamps,
        )
    return errors.RewardUnavailable(f"{reward.name!r} was already given on this card")


def _tier_at_least(parsed: rules.TiersRules, current: str | None, needed: str) -> bool:
    names = [level.name.casefold() for level in parsed.levels]
    if current is None or current.casefold() not in names or needed.casefold() not in names:
        return False
    return names.index(current.casefold()) >= names.index(needed.casefold())


def redeem_reward(
    session: Session, settings: Settings, member: Member, *, reward_id: int, key: str, actor: Actor
) -> Change:
    """Spend points (or stamps) on a catalogue reward; returns a redemption code."""
    member = lock_member(session, member.id)
    previous = replay_for(session, key, member)
    if previous is not None:
        code = session.scalar(
            select(RewardRedemption.code).where(RewardRedemption.ledger_entry_id == previous.id)
        )
        return Change(
            points=previous.points,
            stamps=previous.stamps,
            entries=[previous.id],
            redemption_code=code,
            replayed=True,
        )
    program = session.get(Program, member.program_id)
    assert program is not None
    # Locked (FOR UPDATE; SQLite renders none, its writers are serialized already).
    query = (
        select(Reward)
        .where(Reward.id == reward_id, Reward.program_id == member.program_id)
        .with_for_update()
    )
    reward = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if reward is None:
        raise errors.UnknownReward(f"no reward {reward_id} in this program")
    problem = _reward_problem(program, member, reward, utcnow())
    if problem is None and _on_the_way(reward):
        problem = _place_problem(session, program, member, reward)
    if problem is not None:
        raise problem
    is_stamps = program.kind == ProgramKind.STAMPS
    reason = (
        f"donated to {reward.cause}"
        if reward.kind == RewardKind.DONATION
        else f"reward: {reward.name}"
    )
    entry = post(
        session,
        member,
        kind="redeem",
        key=key,
        actor=actor,
        points=0 if is_stamps else -reward.cost_points,
        stamps=-reward.cost_points if is_stamps else 0,
        reason=reason,
        details={"reward_id": reward.id},
    )
    if reward.stock is not None:
        reward.stock -= 1
    code = secrets.token_hex(5).upper()
    session.add(
        RewardRedemption(
            merchant_id=member.merchant_id,
            member_id=member.id,
            reward_id=reward.id,
            ledger_entry_id=entry.id,
            code=code,
        )
    )
    emit(
        session,
        member.merchant_id,
        "reward.redeemed",
        {
            "member_id": member.id,
            "external_id": member.external_id,
            "reward_id": reward.id,
            "reward": reward.name,
            "points": entry.points,
            "stamps": entry.stamps,
            "redemption_code": code,
            "entry_id": entry.id,
        },
    )
    mark_changed(session, settings, member_id=member.id)
    return Change(
        points=entry.points, stamps=entry.stamps, entries=[entry.id], redemption_code=code
    )


def check_min_tier(program: Program, tier: str | None) -> None:
    """Refuse a reward's minimum tier the program does not have (the API's and the admin's)."""
    if tier is None:
        return
    parsed = program_rules(program)
    names = [level.name for level in parsed.levels] if isinstance(parsed, rules.TiersRules) else []
    if tier not in names:
        raise errors.ValidationFailed(
            f"the program has no tier {tier!r}",
            errors=[{"field": "body.min_tier", "message": f"expected one of {names}"}],
        )
