"""Results per campaign, computed from the rows the rest of the service already keeps.

Definitions (all windows are measured from each recipient's ``sent_at``; for the holdout,
who were never sent anything, from the campaign's ``started_at``):

* **sent**: recipients whose batch went out (status ``sent``).
* **delivered** (a proxy: wallets report no opens). Apple: the device fetched the pass
  (a ``PassEvent(kind="fetched", platform="apple")``, written by the PassKit web service)
  within :data:`DELIVERY_WINDOW` (1 h) after the send. Google: the ``google.message`` job
  for the pass finished ``done`` (object found, message accepted by Google). A recipient
  counts once even if both wallets delivered.
* **redeemed**: offer campaigns: the member redeemed a coupon of the campaign's offer at
  the till (a ``Scan`` with action ``redeem_coupon``, result ``ok``, not undone) within
  ``window_days``. Message-only campaigns: the member came back, i.e. any successful till
  scan (purchase, stamp, reward or coupon redemption) within ``window_days``.
  **redemption rate** = redeemed / sent.
* **uplift**: till scans per member within ``window_days`` after launch, treated group vs
  holdout, as a difference of rates (scans per member, and share of members with at least
  one scan), with the counts. The treated group is every recipient not held out
  (intention to treat: members skipped for the budget stay in it, so the comparison is
  between two random groups).
* **fatigue**: passes removed from a wallet (``PassEvent(kind="removed")``, either
  platform) within 48 h after the send, per variant; the holdout's removals in the 48 h
  after launch are the baseline.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.campaigns.models import Campaign, CampaignRecipient, RecipientStatus
from walletpass.offers.models import Coupon
from walletpass.passes.models import PassEvent
from walletpass.scan.models import Scan

DELIVERY_WINDOW = timedelta(hours=1)
FATIGUE_WINDOW = timedelta(hours=48)
TILL_ACTIONS = ("purchase", "stamp", "redeem_reward", "redeem_coupon")


@dataclass(frozen=True)
class _Recipient:
    id: int
    member_id: int
    pass_id: int | None
    variant: str | None
    holdout: bool
    status: str
    sent_at: datetime | None
    via_apple: bool
    via_google: bool


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _events(
    session: Session,
    merchant_id: int,
    kind: str,
    start: datetime,
    end: datetime,
    platform: str | None = None,
) -> dict[int, list[datetime]]:
    query = select(PassEvent.pass_id, PassEvent.created_at).where(
        PassEvent.merchant_id == merchant_id,
        PassEvent.kind == kind,
        PassEvent.created_at >= start,
        PassEvent.created_at <= end,
    )
    if platform is not None:
        query = query.where(PassEvent.platform == platform)
    out: dict[int, list[datetime]] = defaultdict(list)
    for pass_id, moment in session.execute(query):
        out[pass_id].append(moment)
    for moments in out.values():
        moments.sort()
    return out


def _first_within(
    moments: list[datetime] | None, start: datetime, length: timedelta
) -> datetime | None:
    if not moments:
        return None
    i = bisect_left(moments, start)
    return moments[i] if i < len(moments) and moments[i] <= start + length else None


def _any_within(moments: list[datetime] | None, start: datetime, length: timedelta) -> bool:
    return _first_within(moments, start, length) is not None


def campaign_results(session: Session, campaign_id: int) -> dict[str, Any]:
    """Sent, delivered (per platform), redeemed, redemption rate, uplift, fatigue, per
    variant. See the module docstring for the definitions.

    :raise NotFound: no such campaign (in this session's merchant).
    """
    return _compute(session, campaign_id)[0]


def record_results(session: Session, campaign_id: int) -> dict[str, Any]:
    """Write each sent recipient's ``delivered_at`` / ``redeemed_at`` (first moment seen),
    so per-recipient figures can be read with plain SQL (the admin dashboard does not:
    it reads the scans, walletpass.analytics.campaign_redemptions, so as not to wait a
    day for this job). Run by the ``campaign.measure`` job. Returns the results."""
    result, delivered, redeemed = _compute(session, campaign_id)
    for column, moments in (("delivered_at", delivered), ("redeemed_at", redeemed)):
        rows = [{"rid": rid, "moment": moment} for rid, moment in moments.items()]
        if rows:
            table = CampaignRecipient.__table__
            session.execute(
                table.update()
                .where(table.c.id == bindparam("rid"), table.c[column].is_(None))
                .values({column: bindparam("moment")}),
                rows,
            )
    return result


def _compute(
    session: Session, campaign_id: int
) -> tuple[dict[str, Any], dict[int, datetime], dict[int, datetime]]:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise errors.NotFound(f"no campaign {campaign_id}")
    recipients = [
        _Recipient(*row)
        for row in session.execute(
            select(
                CampaignRecipient.id,
                CampaignRecipient.member_id,
                CampaignRecipient.pass_id,
                CampaignRecipient.variant,
                CampaignRecipient.holdout,
                CampaignRecipient.status,
                CampaignRecipient.sent_at,
                CampaignRecipient.via_apple,
                CampaignRecipient.via_google,
            )
            .where(CampaignRecipient.campaign_id == campaign_id)
            .order_by(CampaignRecipient.id)
        )
    ]
    window = timedelta(days=campaign.window_days)
    launched = campaign.started_at
    sent = [r for r in recipients if r.status == RecipientStatus.SENT and r.sent_at]
    holdout = [r for r in recipients if r.holdout]
    treated = [r for r in recipients if not r.holdout]
    base: dict[str, Any] = {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "window_days": campaign.window_days,
        "started_at": launched.isoformat() if launched else None,
        "recipients": len(recipients),
        "treated": len(treated),
        "holdout": len(holdout),
        "holdout_share_asked": campaign.holdout_share,
        "holdout_share_actual": _rate(len(holdout), len(recipients)),
        "excluded_no_consent": campaign.excluded_no_consent,
        "excluded_no_pass": campaign.excluded_no_pass,
        "skipped_budget": campaign.skipped_budget,
        "sent": len(sent),
    }
    if launched is None:
        return {**base, **_empty()}, {}, {}
    first_sent = min((r.sent_at for r in sent if r.sent_at), default=launched)
    last_sent = max((r.sent_at for r in sent if r.sent_at), default=launched)
    merchant_id = campaign.merchant_id

    moments, delivered_apple, delivered_google = _deliveries(
        session, campaign, sent, first_sent, last_sent
    )
    delivered = delivered_apple | delivered_google

    # Till scans and redemptions.
    scan_end = max(last_sent, launched) + window
    scans = _scans(session, merchant_id, launched, scan_end)
    offer_coupons = _offer_coupons(session, campaign.offer_id, scans) if campaign.offer_id else None

    def redeemed(r: _Recipient, start: datetime) -> datetime | None:
        for moment, action, coupon_id in sorted(scans.get(r.member_id, ())):
            if not start <= moment <= start + window:
                continue
            if offer_coupons is None:
                return moment
            if action == "redeem_coupon" and coupon_id in offer_coupons:
                return moment
        return None

    redeemed_at = {r.id: m for r in sent if r.sent_at and (m := redeemed(r, r.sent_at))}
    redeemed_ids = set(redeemed_at)
    holdout_redeemed = sum(1 for r in holdout if redeemed(r, launched))

    # Fatigue.
    removed = _events(
        session,
        merchant_id,
        "removed",
        min(first_sent, launched),
        max(last_sent, launched) + FATIGUE_WINDOW,
    )
    removed_ids = {
        r.id
        for r in sent
        if r.sent_at and _any_within(removed.get(r.pass_id or 0), r.sent_at, FATIGUE_WINDOW)
    }
    holdout_removed = sum(
        1 for r in holdout if _any_within(removed.get(r.pass_id or 0), launched, FATIGUE_WINDOW)
    )

    uplift = _uplift(campaign.window_days, scans, treated, holdout, launched, window)
    apple_sent = [r for r in sent if r.via_apple]
    google_sent = [r for r in sent if r.via_google]
    variants = _variants(sent, delivered, redeemed_ids, removed_ids)
    result = {
        **base,
        "delivered": len(delivered),
        "delivery_rate": _rate(len(delivered), len(sent)),
        "platforms": {
            "apple": {
                "sent": len(apple_sent),
                "delivered": len(delivered_apple),
                "rate": _rate(len(delivered_apple), len(apple_sent)),
            },
            "google": {
                "sent": len(google_sent),
                "delivered": len(delivered_google),
                "rate": _rate(len(delivered_google), len(google_sent)),
            },
        },
        "redeemed": len(redeemed_ids),
        "redemption_rate": _rate(len(redeemed_ids), len(sent)),
        "holdout_redeemed": holdout_redeemed,
        "holdout_redemption_rate": _rate(holdout_redeemed, len(holdout)),
        "uplift": uplift,
        "fatigue": {
            "removed_48h": len(removed_ids),
            "rate": _rate(len(removed_ids), len(sent)),
            "holdout_removed_48h": holdout_removed,
            "holdout_rate": _rate(holdout_removed, len(holdout)),
        },
        "variants": variants,
    }
    return result, {k: v for k, v in moments.items() if k in delivered}, redeemed_at


def _deliveries(
    session: Session,
    campaign: Campaign,
    sent: list[_Recipient],
    first_sent: datetime,
    last_sent: datetime,
) -> tuple[dict[int, datetime], set[int], set[int]]:
    """Delivery proxies: each delivered recipient's first moment seen, and the recipients
    delivered through Apple (a fetch of the pass soon after the push) and through Google
    (the message's object updated)."""
    fetched = _events(
        session, campaign.merchant_id, "fetched", first_sent, last_sent + DELIVERY_WINDOW, "apple"
    )
    google_done = _google_delivered(session, campaign.id)
    moments: dict[int, datetime] = {}
    for r in sent:
        if r.via_apple and r.sent_at:
            seen = _first_within(fetched.get(r.pass_id or 0), r.sent_at, DELIVERY_WINDOW)
            if seen is not None:
                moments[r.id] = seen
    delivered_apple = set(moments)
    delivered_google = {r.id for r in sent if r.via_google and r.pass_id in google_done}
    for r in sent:
        if r.id in delivered_google and r.pass_id is not None:
            done_at = google_done[r.pass_id]
            moments[r.id] = min(moments.get(r.id, done_at), done_at)
    return moments, delivered_apple, delivered_google


def _scan_group(
    scans: dict[int, list[tuple[datetime, str, int | None]]],
    members: Iterable[_Recipient],
    launched: datetime,
    window: timedelta,
) -> dict[str, Any]:
    rows = list(members)
    counts = [
        sum(
            1
            for moment, _a, _c in scans.get(r.member_id, ())
            if launched <= moment <= launched + window
        )
        for r in rows
    ]
    active = sum(1 for c in counts if c)
    return {
        "members": len(rows),
        "scans": sum(counts),
        "scans_per_member": _rate(sum(counts), len(rows)),
        "members_with_scan": active,
        "share_with_scan": _rate(active, len(rows)),
    }


def _uplift(
    window_days: int,
    scans: dict[int, list[tuple[datetime, str, int | None]]],
    treated: list[_Recipient],
    holdout: list[_Recipient],
    launched: datetime,
    window: timedelta,
) -> dict[str, Any]:
    """Scans in the window after the launch, treated against held-out members."""
    t = _scan_group(scans, treated, launched, window)
    h = _scan_group(scans, holdout, launched, window)
    uplift: dict[str, Any] = {
        "days": window_days,
        "treated": t,
        "holdout": h,
        "scans_per_member_diff": None,
        "share_with_scan_diff_points": None,
    }
    if t["members"] and h["members"]:
        uplift["scans_per_member_diff"] = round(
            t["scans"] / t["members"] - h["scans"] / h["members"], 4
        )
        uplift["share_with_scan_diff_points"] = round(
            100 * (t["members_with_scan"] / t["members"] - h["members_with_scan"] / h["members"]),
            2,
        )
    return uplift


def _variants(
    sent: list[_Recipient], delivered: set[int], redeemed_ids: set[int], removed_ids: set[int]
) -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {}
    for r in sent:
        v = variants.setdefault(
            r.variant or "-", {"sent": 0, "delivered": 0, "redeemed": 0, "removed_48h": 0}
        )
        v["sent"] += 1
        v["delivered"] += r.id in delivered
        v["redeemed"] += r.id in redeemed_ids
        v["removed_48h"] += r.id in removed_ids
    for v in variants.values():
        v["redemption_rate"] = _rate(v["redeemed"], v["sent"])
        v["removal_rate"] = _rate(v["removed_48h"], v["sent"])
    return variants


def _empty() -> dict[str, Any]:
    return {
        "delivered": 0,
        "delivery_rate": None,
        "platforms": {
            "apple": {"sent": 0, "delivered": 0, "rate": None},
            "google": {"sent": 0, "delivered": 0, "rate": None},
        },
        "redeemed": 0,
        "redemption_rate": None,
        "holdout_redeemed": 0,
        "holdout_redemption_rate": None,
        "uplift": None,
        "fatigue": {"removed_48h": 0, "rate": None, "holdout_removed_48h": 0, "holdout_rate": None},
        "variants": {},
    }


def _google_delivered(session: Session, campaign_id: int) -> dict[int, datetime]:
    """pass id → when its campaign message job was done (stamped on the recipient row by
    :func:`walletpass.campaigns.jobs.record_google_delivery`)."""
    rows = session.execute(
        select(CampaignRecipient.pass_id, CampaignRecipient.google_delivered_at).where(
            CampaignRecipient.campaign_id == campaign_id,
            CampaignRecipient.google_delivered_at.is_not(None),
            CampaignRecipient.pass_id.is_not(None),
        )
    )
    return {pass_id: moment for pass_id, moment in rows if pass_id is not None and moment}


def _scans(
    session: Session, merchant_id: int, start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, str, int | None]]]:
    out: dict[int, list[tuple[datetime, str, int | None]]] = defaultdict(list)
    for member_id, moment, action, coupon_id in session.execute(
        select(Scan.member_id, Scan.created_at, Scan.action, Scan.coupon_id).where(
            Scan.merchant_id == merchant_id,
            Scan.created_at >= start,
            Scan.created_at <= end,
            Scan.result == "ok",
            Scan.undone_at.is_(None),
            Scan.action.in_(TILL_ACTIONS),
            Scan.member_id.is_not(None),
        )
    ):
        out[member_id].append((moment, action, coupon_id))
    return out


def _offer_coupons(
    session: Session, offer_id: int, scans: dict[int, list[tuple[datetime, str, int | None]]]
) -> set[int]:
    ids = {c for rows in scans.values() for _m, a, c in rows if a == "redeem_coupon" and c}
    if not ids:
        return set()
    return set(
        session.scalars(select(Coupon.id).where(Coupon.id.in_(ids), Coupon.offer_id == offer_id))
    )
