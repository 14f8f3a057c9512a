"""One notification budget per pass, across both wallets, for marketing.

The rules, in the order the fan-out applies them:

* **Consent.** Only members with ``marketing_consent`` are in a campaign's audience at
  all; the others are counted as "excluded: no consent" (walletpass.campaigns.audience).
* **Marketing cap.** At most :data:`MARKETING_LIMIT` campaign sends per pass per rolling
  :data:`MARKETING_WINDOW` (2 per 7 days), whichever wallet holds the pass. A send over the
  cap is skipped for that pass (recipient status ``skipped``, reason ``budget``) and
  counted on the campaign. The cap is a module constant today; a per-merchant override
  would be a column on Merchant read by :func:`limits_for`.
* **Balance changes outrank marketing.** Google allows 3 notifying writes per object per
  24 h (walletpass.google.budget). A campaign message may notify only while at least
  :data:`GOOGLE_BALANCE_RESERVE` of those stays free, so a points or stamp change later
  that day still reaches the lock screen; otherwise the message is added silently. Apple
  has no such quota: the push only makes the device fetch, and the card's changeMessage
  decides what is shown.
* **Coalescing.** Pushes merge in the outbox (one pending ``apple.push`` per device
  token), and a newer campaign replaces an older one's overlay on the card rather than
  stacking (walletpass.campaigns.state picks the newest send).
* **Quiet hours.** Marketing jobs whose run time falls inside the merchant's quiet hours
  (local time, ``Merchant.quiet_start_minute``..``quiet_end_minute``, may wrap midnight)
  wait until the quiet hours end (:func:`defer_for_quiet_hours`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.campaigns.models import CampaignRecipient, RecipientStatus
from walletpass.google import budget as google_budget
from walletpass.google.models import GoogleNotification
from walletpass.tenancy.models import Merchant

MARKETING_LIMIT = 2
MARKETING_WINDOW = timedelta(days=7)
GOOGLE_BALANCE_RESERVE = 1


@dataclass(frozen=True)
class Limits:
    marketing_limit: int
    marketing_window: timedelta


def limits_for(merchant: Merchant | None) -> Limits:
    """The merchant's marketing budget (the same constants for everyone for now)."""
    return Limits(MARKETING_LIMIT, MARKETING_WINDOW)


def over_budget(
    session: Session, pass_ids: Iterable[int], now: datetime, limits: Limits
) -> set[int]:
    """Passes that already had ``limits.marketing_limit`` campaign sends in the window."""
    ids = list(pass_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(CampaignRecipient.pass_id, func.count())
        .where(
            CampaignRecipient.pass_id.in_(ids),
            CampaignRecipient.status == RecipientStatus.SENT,
            CampaignRecipient.sent_at > now - limits.marketing_window,
        )
        .group_by(CampaignRecipient.pass_id)
    ).all()
    return {pass_id for pass_id, count in rows if count >= limits.marketing_limit}


def google_may_notify(session: Session, object_ids: Iterable[str], now: datetime) -> set[str]:
    """Objects a marketing message may notify on, keeping the balance reserve free."""
    ids = list(object_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(GoogleNotification.object_id, GoogleNotification.kind, func.count())
        .where(
            GoogleNotification.object_id.in_(ids),
            GoogleNotification.created_at > now - google_budget.WINDOW,
        )
        .group_by(GoogleNotification.object_id, GoogleNotification.kind)
    ).all()
    used: dict[str, int] = {}
    refused: set[str] = set()
    for object_id, kind, count in rows:
        if kind == google_budget.QUOTA_EXCEEDED:
            refused.add(object_id)
        else:
            used[object_id] = used.get(object_id, 0) + count
    allowance = google_budget.LIMIT - GOOGLE_BALANCE_RESERVE
    return {oid for oid in ids if oid not in refused and used.get(oid, 0) < allowance}


def merchant_zone(merchant: Merchant) -> ZoneInfo:
    try:
        return ZoneInfo(merchant.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_end(merchant: Merchant, moment: datetime) -> datetime | None:
    """When the quiet hours around ``moment`` end (UTC), or None if it is not quiet then."""
    start, end = merchant.quiet_start_minute, merchant.quiet_end_minute
    if start is None or end is None or start == end:
        return None
    zone = merchant_zone(merchant)
    local = moment.astimezone(zone)
    minute = local.hour * 60 + local.minute
    if start < end:  # e.g. 13:00-14:00 on the same day
        inside = start <= minute < end
        end_day = local.date()
    else:  # wraps midnight, e.g. 21:00-08:00
        inside = minute >= start or minute < end
        end_day = local.date() + timedelta(days=1) if minute >= start else local.date()
    if not inside:
        return None
    # Built from the local wall-clock time, so a DST change inside the quiet hours still
    # ends them at the merchant's 08:00, not 07:00 or 09:00.
    wall = datetime.combine(end_day, time(end // 60, end % 60), tzinfo=zone)
    return wall.astimezone(moment.tzinfo)


def defer_for_quiet_hours(merchant: Merchant, moment: datetime) -> datetime:
    """``moment``, or the end of the merchant's quiet hours if it falls inside them."""
    return quiet_end(merchant, moment) or moment
