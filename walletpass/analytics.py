"""The merchant's KPIs, computed from the rows that record what happened. Flask-free.

One source for the admin's dashboard and ``GET /api/v1/stats``, so the two show the same
numbers.

Every function takes a session (scoped to one merchant by the caller) and a
:class:`Period`. Days are the merchant's local days, so "scans on Monday" means Monday at
the till, not Monday in UTC.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from walletpass.campaigns.models import Campaign, CampaignRecipient
from walletpass.loyalty import rules as loyalty_rules
from walletpass.loyalty.models import Member, Program, ProgramKind
from walletpass.offers.models import Coupon
from walletpass.passes.models import Pass, PassEvent, PassStatus
from walletpass.scan.models import Scan

PERIODS = (7, 30, 90)
PLATFORMS = ("apple", "google")
EVENT_KINDS = ("installed", "removed")
# A visit is a scan that recorded a purchase; on a stamp card the stamp is the purchase.
VISIT_ACTIONS = ("purchase", "stamp")
# Reading a card to see its balance changes nothing: the till page looks every card up
# before it acts on it, so counting look-ups would count most customers twice.
LOOKUP_ACTION = "lookup"


def counted_scans() -> tuple[ColumnElement[bool], ...]:
    """What "Scans" counts, wherever the merchant is shown a number of scans (the
    dashboard's KPI and chart, ``GET /api/v1/stats``): a till action that happened and
    stands. A look-up, a refused scan (logged with result ``error``) and a scan undone as
    a mistake are not scans; a purchase, a stamp, a reward or coupon redemption and a
    refund are."""
    return (
        Scan.result == "ok",
        Scan.action != LOOKUP_ACTION,
        Scan.undone_at.is_(None),
    )


@dataclass(frozen=True)
class Period:
    """``days`` whole local days ending with ``end``'s day; ``start``/``end`` in UTC."""

    days: int
    tz: ZoneInfo
    first_day: date
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, now: datetime, days: int, tz: ZoneInfo) -> Period:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        local_today = now.astimezone(tz).date()
        first_day = local_today - timedelta(days=days - 1)
        start = datetime.combine(first_day, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(local_today + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        return cls(days=days, tz=tz, first_day=first_day, start=start, end=end)

    @property
    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()


@dataclass
class DailySeries:
    days: list[date]
    series: dict[str, list[int]] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(self.series.get(name, []))


def _bucket(period: Period, moments: list[tuple[str, datetime]], names: list[str]) -> DailySeries:
    index = {day: i for i, day in enumerate(period.day_list)}
    out = DailySeries(days=period.day_list, series={n: [0] * period.days for n in names})
    for name, moment in moments:
        i = index.get(period.local_day(moment))
        if i is not None and name in out.series:
            out.series[name][i] += 1
    return out


def pass_events_per_day(session: Session, period: Period) -> DailySeries:
    """Installs and removals per platform per day; series named ``apple installed`` etc."""
    rows = session.execute(
        select(PassEvent.platform, PassEvent.kind, PassEvent.created_at).where(
            PassEvent.kind.in_(EVENT_KINDS),
            PassEvent.created_at >= period.start,
            PassEvent.created_at < period.end,
        )
    ).all()
    names = [f"{p} {k}" for p in PLATFORMS for k in EVENT_KINDS]
    return _bucket(period, [(f"{p} {k}", at) for p, k, at in rows], names)


def scans_per_day(session: Session, period: Period) -> DailySeries:
    """Scans per local day (:func:`counted_scans`), as series ``scans``."""
    rows = session.scalars(
        select(Scan.created_at).where(
            *counted_scans(), Scan.created_at >= period.start, Scan.created_at < period.end
        )
    ).all()
    return _bucket(period, [("scans", at) for at in rows], ["scans"])


def active_passes(session: Session) -> int:
    return int(
        session.scalar(select(func.count(Pass.id)).where(Pass.status == PassStatus.ACTIVE)) or 0
    )


def _visits(period: Period) -> tuple[ColumnElement[bool], ...]:
    return (
        *counted_scans(),
        Scan.member_id.is_not(None),
        Scan.action.in_(VISIT_ACTIONS),
        Scan.created_at >= period.start,
        Scan.created_at < period.end,
    )


@dataclass(frozen=True)
class RepeatRate:
    repeat_members: int
    visiting_members: int

    @property
    def rate(self) -> float | None:
        if not self.visiting_members:
            return None
        return self.repeat_members / self.visiting_members


def repeat_visit_rate(session: Session, period: Period) -> RepeatRate:
    """Members with two or more visits in the period over members with at least one."""
    per_member = Counter(session.scalars(select(Scan.member_id).where(*_visits(period))).all())
    return RepeatRate(
        repeat_members=sum(1 for n in per_member.values() if n >= 2),
        visiting_members=len(per_member),
    )


def average_spend(session: Session, period: Period) -> Decimal | None:
    """Mean amount of the period's purchases (those that carry an amount), to the cent."""
    total, count = session.execute(
        select(func.sum(Scan.amount), func.count(Scan.amount)).where(
            *counted_scans(),
            Scan.action == "purchase",
            Scan.amount.is_not(None),
            Scan.created_at >= period.start,
            Scan.created_at < period.end,
        )
    ).one()
    if not count:
        return None
    return (Decimal(total) / count).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class CampaignResult:
    campaign_id: int
    name: str
    sent: int
    redeemed: int

    @property
    def rate(self) -> float | None:
        return self.redeemed / self.sent if self.sent else None


def campaign_redemptions(session: Session, limit: int = 10) -> list[CampaignResult]:
    """Redemption rate of the newest campaigns about an offer that sent something.

    A campaign issues no coupon of its own: it shows an offer on its recipients' cards,
    and the coupon they redeem is the offer's (from a flyer, the offers program, a
    rollover). So the data model can say truthfully only this, which is what counts: a
    recipient sent the campaign (holdout members are left out: nothing was sent to them)
    redeemed it when a coupon of the campaign's offer was redeemed on their card at the
    till (a scan with action ``redeem_coupon``, result ``ok``, not undone, of a coupon of
    that offer) from their send to ``window_days`` after it, the campaign's results
    window. It is read from the scans at each call, as the campaign's results page
    (:mod:`walletpass.campaigns.results`) reads it, so the chart is current and an undone
    redemption leaves it; the recipients' ``redeemed_at``, stamped by the
    ``campaign.measure`` job a day at a time and never taken back, is not read. A
    campaign with no offer has nothing to redeem and is not in the list.
    """
    sent = func.count(CampaignRecipient.sent_at)
    campaigns = session.execute(
        select(Campaign.id, Campaign.name, Campaign.offer_id, Campaign.window_days)
        .join(CampaignRecipient, CampaignRecipient.campaign_id == Campaign.id)
        .where(Campaign.offer_id.is_not(None), CampaignRecipient.holdout.is_(False))
        .group_by(Campaign.id, Campaign.name, Campaign.offer_id, Campaign.window_days)
        .having(sent > 0)
        .order_by(Campaign.id.desc())
        .limit(limit)
    ).all()
    if not campaigns:
        return []
    recipients: dict[int, list[tuple[int, datetime]]] = {c.id: [] for c in campaigns}
    for campaign_id, member_id, sent_at in session.execute(
        select(
            CampaignRecipient.campaign_id, CampaignRecipient.member_id, CampaignRecipient.sent_at
        ).where(
            CampaignRecipient.campaign_id.in_(recipients),
            CampaignRecipient.holdout.is_(False),
            CampaignRecipient.sent_at.is_not(None),
        )
    ):
        recipients[campaign_id].append((member_id, sent_at))
    first_sent = min(at for rows in recipients.values() for _m, at in rows)
    # (offer, member) -> when coupons of the offer were redeemed on the member's card.
    redeemed: dict[tuple[int, int], list[datetime]] = {}
    for offer_id, member_id, moment in session.execute(
        select(Coupon.offer_id, Scan.member_id, Scan.created_at)
        .join(Coupon, Coupon.id == Scan.coupon_id)
        .where(
            *counted_scans(),
            Scan.action == "redeem_coupon",
            Scan.member_id.is_not(None),
            Scan.created_at >= first_sent,
            Coupon.offer_id.in_({c.offer_id for c in campaigns}),
        )
    ):
        redeemed.setdefault((offer_id, member_id), []).append(moment)
    results = []
    for c in campaigns:
        window = timedelta(days=c.window_days)
        count = sum(
            1
            for member_id, sent_at in recipients[c.id]
            if any(
                sent_at <= moment <= sent_at + window
                for moment in redeemed.get((c.offer_id, member_id), ())
            )
        )
        results.append(CampaignResult(c.id, c.name, len(recipients[c.id]), count))
    return results


@dataclass(frozen=True)
class Liability:
    """Outstanding points, and their value where the program says what a point is worth."""

    points: int
    value: Decimal
    # Points of programs without points_to_currency: owed, but with no cash value set.
    unvalued_points: int


def points_liability(session: Session) -> Liability:
    """Sum of positive balances; negative balances (a refund after spending) owe nothing."""
    rows = session.execute(
        select(Member.program_id, func.sum(Member.points_balance))
        .where(Member.points_balance > 0)
        .group_by(Member.program_id)
    ).all()
    programs = {
        p.id: p
        for p in session.scalars(select(Program).where(Program.id.in_([r[0] for r in rows])))
    }
    points = 0
    unvalued = 0
    value = Decimal(0)
    for program_id, balance in rows:
        balance = int(balance or 0)
        points += balance
        rate = _point_value(programs.get(program_id))
        if rate is None:
            unvalued += balance
        else:
            value += rate * balance
    return Liability(points=points, value=value.quantize(Decimal("0.01")), unvalued_points=unvalued)


def _point_value(program: Program | None) -> Decimal | None:
    if program is None or program.kind not in (ProgramKind.POINTS, ProgramKind.TIERS):
        return None
    try:
        parsed = loyalty_rules.validate_rules(program.kind, program.rules)
    except loyalty_rules.RulesError:
        return None
    return getattr(parsed, "points_to_currency", None)


@dataclass
class Dashboard:
    period: Period
    pass_events: DailySeries
    scans: DailySeries
    active_passes: int
    repeat: RepeatRate
    average_spend: Decimal | None
    campaigns: list[CampaignResult]
    liability: Liability


def dashboard(session: Session, period: Period) -> Dashboard:
    return Dashboard(
        period=period,
        pass_events=pass_events_per_day(session, period),
        scans=scans_per_day(session, period),
        active_passes=active_passes(session),
        repeat=repeat_visit_rate(session, period),
        average_spend=average_spend(session, period),
        campaigns=campaign_redemptions(session),
        liability=points_liability(session),
    )
