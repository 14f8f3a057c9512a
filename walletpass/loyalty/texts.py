"""A program's and its rewards' names in the merchant's other languages, and the cards that
show them.

A text given in one language changes only the cards of the members who read that
language (and, for the merchant's own language, the cards with no member: flyer coupons
read it): those are marked changed, nobody else's. Flask-free; the caller's transaction
commits. The texts themselves are checked by walletpass.i18n.merchant_texts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.i18n.merchant_texts import Translations, changed_languages, replaced
from walletpass.loyalty import rules as loyalty_rules
from walletpass.loyalty.models import Member, Program, Reward
from walletpass.loyalty.programs import program_rules
from walletpass.passes.changes import mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.refresh import program_passes
from walletpass.tenancy.models import Merchant


def read_in(
    merchant_id: int, merchant_language: str, langs: Collection[str]
) -> ColumnElement[bool]:
    """The passes read in one of ``langs``: their member's language, or the merchant's for
    a pass with no member (a flyer coupon)."""
    members = select(Member.id).where(
        Member.merchant_id == merchant_id, Member.language.in_(sorted(langs))
    )
    memberless = Pass.member_id.is_(None) if merchant_language in langs else false()
    return Pass.member_id.in_(members) | memberless


def mark_read_in(
    session: Session,
    settings: Settings,
    shown: ColumnElement[bool],
    merchant_id: int,
    langs: Collection[str],
) -> int:
    """Mark the active passes of ``shown`` read in ``langs`` changed; how many were."""
    if not langs:
        return 0
    merchant = session.get(Merchant, merchant_id)
    assert merchant is not None
    where = (
        shown & (Pass.status == PassStatus.ACTIVE) & read_in(merchant_id, merchant.language, langs)
    )
    return len(mark_changed(session, settings, passes=where, notify=False))


def set_program_texts(
    session: Session,
    settings: Settings,
    program: Program,
    changes: Mapping[str, Mapping[str, str]],
    *,
    tier_names: Mapping[str, Mapping[str, str]] | None = None,
    reward_changes: Mapping[int, Mapping[str, Mapping[str, str]]] | None = None,
) -> set[str]:
    """Replace the program's name in each language of ``changes`` (an empty one: back to
    the default), for a tiers program its levels' names (``{level name: {lang: name}}``,
    each level given replacing its names whole), and its rewards' names (``{reward id:
    changes}``). Returns the languages whose texts changed; the program's cards read in
    them are marked changed, once.

    :raise walletpass.loyalty.rules.RulesError: a tier name the rules refuse (too long).
    """
    before = program.translations or {}
    program.translations = replaced(before, changes)
    langs = changed_languages(before, program.translations)
    if tier_names:
        langs |= _set_tier_names(program, tier_names)
    for reward_id, texts in (reward_changes or {}).items():
        reward = session.get(Reward, reward_id)
        if reward is None or reward.program_id != program.id:
            raise LookupError(f"program {program.id} has no reward {reward_id}")
        langs |= _set_reward(reward, texts)
    if langs:
        mark_read_in(session, settings, program_passes(program.id), program.merchant_id, langs)
    return langs


def _set_reward(reward: Reward, changes: Mapping[str, Mapping[str, str]]) -> set[str]:
    before = reward.translations or {}
    reward.translations = replaced(before, changes)
    return changed_languages(before, reward.translations)


def _set_tier_names(program: Program, tier_names: Mapping[str, Mapping[str, str]]) -> set[str]:
    parsed = program_rules(program)
    if not isinstance(parsed, loyalty_rules.TiersRules):
        return set()
    raw = parsed.model_dump(mode="json")
    langs: set[str] = set()
    for level in raw["levels"]:
        if level["name"] not in tier_names:
            continue
        before = level.get("names") or {}
        after = {lang: name for lang, name in tier_names[level["name"]].items() if name}
        langs |= {lang for lang in set(before) | set(after) if before.get(lang) != after.get(lang)}
        level["names"] = after
    program.rules = loyalty_rules.validate_rules(program.kind, raw).model_dump(mode="json")
    return langs


def tier_names(program: Program) -> dict[str, dict[str, str]]:
    """``{level name: {lang: name}}`` of a tiers program; ``{}`` for another kind."""
    parsed = program_rules(program)
    if not isinstance(parsed, loyalty_rules.TiersRules):
        return {}
    return {level.name: dict(level.names) for level in parsed.levels}


def set_reward_texts(
    session: Session, settings: Settings, reward: Reward, changes: Mapping[str, Mapping[str, str]]
) -> set[str]:
    """Replace the reward's name in each language of ``changes``; its program's cards read
    in those languages are marked changed (they list what a member can redeem)."""
    langs = _set_reward(reward, changes)
    if langs:
        mark_read_in(
            session, settings, program_passes(reward.program_id), reward.merchant_id, langs
        )
    return langs


def stored(translations: Any) -> Translations:
    """A row's translations as a plain dict (``{}`` for none)."""
    return {
        lang: dict(texts) for lang, texts in (translations or {}).items() if isinstance(texts, dict)
    }
