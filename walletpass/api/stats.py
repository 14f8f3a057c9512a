"""/stats: the dashboard's numbers for integrations (same source: walletpass.analytics)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from walletpass import analytics
from walletpass.api.framework import Context, Routes
from walletpass.api.resources_schemas import DayCount, PerPlatform, StatsOut, StatsQuery
from walletpass.db import utcnow
from walletpass.loyalty.models import LedgerEntry, Member
from walletpass.tenancy.models import Merchant

routes = Routes()


@routes.operation(
    "GET", "/stats", scopes=("crm",), query=StatsQuery, response=StatsOut, tag="stats"
)
def get_stats(ctx: Context) -> StatsOut:
    """Installs and removals per wallet, active passes, scans per day, points owed."""
    s = ctx.session
    merchant = s.get(Merchant, ctx.merchant_id)
    assert merchant is not None
    period = analytics.Period.ending(utcnow(), ctx.query.days, ZoneInfo(merchant.timezone))
    events = analytics.pass_events_per_day(s, period)
    scans = analytics.scans_per_day(s, period)
    repeat = analytics.repeat_visit_rate(s, period)
    liability = analytics.points_liability(s)
    in_period = (LedgerEntry.created_at >= period.start, LedgerEntry.created_at < period.end)
    earned = s.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.points > 0, *in_period
        )
    )
    redeemed = s.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.kind == "redeem", *in_period
        )
    )
    members_total = s.scalar(select(func.count(Member.id)))
    new_members = s.scalar(
        select(func.count(Member.id)).where(
            Member.created_at >= period.start, Member.created_at < period.end
        )
    )
    return StatsOut(
        days=period.days,
        since=period.start,
        until=period.end,
        members_total=int(members_total or 0),
        new_members=int(new_members or 0),
        active_passes=analytics.active_passes(s),
        installs=PerPlatform(
            apple=events.total("apple installed"), google=events.total("google installed")
        ),
        removals=PerPlatform(
            apple=events.total("apple removed"), google=events.total("google removed")
        ),
        scans_total=scans.total("scans"),
        scans_per_day=[
            DayCount(day=day, count=n)
            for day, n in zip(scans.days, scans.series["scans"], strict=True)
        ],
        repeat_visit_rate=repeat.rate,
        average_spend=analytics.average_spend(s, period),
        outstanding_points=liability.points,
        outstanding_value=liability.value,
        points_earned=int(earned or 0),
        points_redeemed=-int(redeemed or 0),
    )
