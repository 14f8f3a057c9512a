"""Audience selection: which members a campaign targets, as one set-based query.

Kinds (``Campaign.audience``):

``{"kind": "all"}``
``{"kind": "tier", "tier": "Gold"}``
``{"kind": "lapsed", "days": 60}``       no activity (earn or redemption) for N days; a
                                        member never active counts from joining
``{"kind": "birthday_month", "month": 5}``  month 1-12 of ``Member.birthday``
``{"kind": "tag", "tag": "vip"}``        a CRM tag: ``Member.tags[tag]`` present and not
                                        false/null
``{"kind": "rfm", "segment": "champions"}``  see :data:`RFM_SEGMENTS`

Every kind is limited to members holding an active loyalty pass (what the campaign is
shown on) and, for marketing, to members who consented. ``Campaign.program_id`` narrows
the audience to one program's members.

RFM: over the last :data:`RFM_DAYS` days of purchases (``earn`` ledger entries with an
amount, whatever the till or CRM), each buyer gets R, F and M scores 1-5 by quintile
(``NTILE(5)``; ties broken by member id so a launch is reproducible): R from the last
purchase (5 = most recent), F from the number of purchases, M from the amount spent.
Members with no purchase in the period are segment ``inactive``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    TextClause,
    and_,
    extract,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.passes.models import Pass, PassStatus

KINDS = ("all", "tier", "lapsed", "birthday_month", "tag", "rfm")
RFM_DAYS = 365
# segment -> (R range, F range), inclusive; checked in this order, first match wins.
RFM_SEGMENTS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "champions": ((4, 5), (4, 5)),
    "loyal": ((3, 5), (3, 5)),
    "promising": ((4, 5), (1, 2)),
    "at_risk": ((1, 2), (3, 5)),
    "hibernating": ((1, 2), (1, 2)),
    "needs_attention": ((3, 3), (1, 2)),
}
RFM_ALL = (*RFM_SEGMENTS, "inactive")


class AudienceError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate(audience: dict[str, Any]) -> dict[str, Any]:
    """A clean copy of ``audience``.

    :raise AudienceError: unknown kind or a missing/bad parameter.
    """
    kind = audience.get("kind")
    if kind not in KINDS:
        raise AudienceError("audience.kind", f"must be one of {', '.join(KINDS)}")
    out: dict[str, Any] = {"kind": kind}
    if kind == "tier":
        tier = str(audience.get("tier") or "").strip()
        if not tier:
            raise AudienceError("audience.tier", "name the tier")
        out["tier"] = tier
    elif kind == "lapsed":
        days = _int(audience.get("days"))
        if days is None or not 1 <= days <= 3650:
            raise AudienceError("audience.days", "a number of days between 1 and 3650")
        out["days"] = days
    elif kind == "birthday_month":
        month = _int(audience.get("month"))
        if month is None or not 1 <= month <= 12:
            raise AudienceError("audience.month", "a month between 1 and 12")
        out["month"] = month
    elif kind == "tag":
        tag = str(audience.get("tag") or "").strip()
        if not tag or len(tag) > 100:
            raise AudienceError("audience.tag", "name the CRM tag (at most 100 characters)")
        out["tag"] = tag
    elif kind == "rfm":
        segment = str(audience.get("segment") or "").strip()
        if segment not in RFM_ALL:
            raise AudienceError("audience.segment", f"one of {', '.join(RFM_ALL)}")
        out["segment"] = segment
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _criteria(
    session: Session, merchant_id: int, audience: dict[str, Any], now: datetime
) -> ColumnElement[bool] | TextClause:
    kind = audience["kind"]
    if kind == "all":
        return Member.id.is_not(None)
    if kind == "tier":
        return Member.tier == audience["tier"]
    if kind == "lapsed":
        cutoff = now - timedelta(days=int(audience["days"]))
        return or_(
            Member.last_activity_at < cutoff,
            and_(Member.last_activity_at.is_(None), Member.created_at < cutoff),
        )
    if kind == "birthday_month":
        return and_(
            Member.birthday.is_not(None), extract("month", Member.birthday) == audience["month"]
        )
    if kind == "tag":
        return _has_tag(session, audience["tag"])
    if kind == "rfm":
        return _rfm(merchant_id, audience["segment"], now)
    raise AssertionError(kind)


def _has_tag(session: Session, tag: str) -> ColumnElement[bool] | TextClause:
    if session.get_bind().dialect.name == "postgresql":
        return text(
            "(members.tags -> :tag) IS NOT NULL"
            " AND (members.tags -> :tag) NOT IN ('false'::jsonb, 'null'::jsonb)"
        ).bindparams(tag=tag)
    path = '$."' + tag.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return func.json_type(Member.tags, path).in_(
        ["true", "integer", "real", "text", "array", "object"]
    )


def rfm_scores(merchant_id: int, now: datetime) -> Select[Any]:
    """member_id, r, f, m for every member who bought in the last RFM_DAYS days."""
    purchases = (
        select(
            LedgerEntry.member_id.label("member_id"),
            func.max(LedgerEntry.created_at).label("last_at"),
            func.count().label("freq"),
            func.sum(LedgerEntry.amount).label("spend"),
        )
        .where(
            LedgerEntry.merchant_id == merchant_id,
            LedgerEntry.kind == "earn",
            LedgerEntry.amount.is_not(None),
            LedgerEntry.created_at >= now - timedelta(days=RFM_DAYS),
        )
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    c = purchases.c
    return select(
        c.member_id,
        func.ntile(5).over(order_by=(c.last_at, c.member_id)).label("r"),
        func.ntile(5).over(order_by=(c.freq, c.member_id)).label("f"),
        func.ntile(5).over(order_by=(c.spend, c.member_id)).label("m"),
    )


def _rfm(merchant_id: int, segment: str, now: datetime) -> ColumnElement[bool]:
    scores = rfm_scores(merchant_id, now).subquery()
    if segment == "inactive":
        return Member.id.not_in(select(scores.c.member_id))
    checks: list[ColumnElement[bool]] = []
    taken: list[ColumnElement[bool]] = []
    for name, ((r_lo, r_hi), (f_lo, f_hi)) in RFM_SEGMENTS.items():
        cond = and_(scores.c.r.between(r_lo, r_hi), scores.c.f.between(f_lo, f_hi))
        if name == segment:
            # First match wins: exclude the segments listed before this one.
            checks.append(and_(cond, *[~t for t in taken]) if taken else cond)
            break
        taken.append(cond)
    return Member.id.in_(select(scores.c.member_id).where(*checks))


def audience_query(
    session: Session,
    merchant_id: int,
    audience: dict[str, Any],
    *,
    program_id: int | None,
    now: datetime,
    consent: bool | None = True,
) -> Select[tuple[int, int]]:
    """(member_id, pass_id) of the audience, ordered by member id.

    :param consent: True: consenting members only (who gets marketing); False: the
        non-consenting ones (for the "excluded" count); None: both.
    """
    card = (
        select(Pass.member_id.label("member_id"), func.min(Pass.id).label("pass_id"))
        .where(
            Pass.merchant_id == merchant_id,
            Pass.member_id.is_not(None),
            Pass.coupon_id.is_(None),
            Pass.status == PassStatus.ACTIVE,
        )
        .group_by(Pass.member_id)
        .subquery()
    )
    query = (
        select(Member.id, card.c.pass_id)
        .join(card, card.c.member_id == Member.id)
        .where(Member.merchant_id == merchant_id, _criteria(session, merchant_id, audience, now))
        .order_by(Member.id)
    )
    if program_id is not None:
        query = query.where(Member.program_id == program_id)
    if consent is True:
        query = query.where(Member.marketing_consent.is_(True))
    elif consent is False:
        query = query.where(Member.marketing_consent.is_(False))
    return query


def count_matching(
    session: Session,
    merchant_id: int,
    audience: dict[str, Any],
    *,
    program_id: int | None,
    now: datetime,
) -> dict[str, int]:
    """How many members the audience matches: with consent, without, and without a card."""
    with_card = {}
    for label, consent in (("consenting", True), ("no_consent", False)):
        q = audience_query(
            session, merchant_id, audience, program_id=program_id, now=now, consent=consent
        ).order_by(None)
        with_card[label] = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    everyone = (
        select(func.count())
        .select_from(Member)
        .where(
            Member.merchant_id == merchant_id,
            Member.marketing_consent.is_(True),
            _criteria(session, merchant_id, audience, now),
        )
    )
    if program_id is not None:
        everyone = everyone.where(Member.program_id == program_id)
    consenting_total = session.scalar(everyone) or 0
    return {
        "consenting": with_card["consenting"],
        "no_consent": with_card["no_consent"],
        "no_pass": max(consenting_total - with_card["consenting"], 0),
    }


__all__ = [
    "KINDS",
    "RFM_ALL",
    "RFM_SEGMENTS",
    "AudienceError",
    "audience_query",
    "count_matching",
    "rfm_scores",
    "validate",
]
