"""How a campaign's Apple pushes are paced, for its progress view and the API.

A campaign over walletpass.passes.changes.PACE_ABOVE recipients has its pushes spread at
WALLETPASS_PUSH_RATE (every push makes a phone fetch its pass); each fan-out batch
records on the campaign the rate, the pushes it queued and when the last is due. While
batches remain, the end is estimated: the recipients still pending are counted as one
push each, after the last slot taken so far.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo
from typing import Any

from walletpass.campaigns.models import Campaign, CampaignStatus


def push_pace(campaign: Campaign, pending: int, now: datetime) -> dict[str, Any] | None:
    """``{"rate", "pushes", "last_due_at", "due_in_seconds", "estimated"}``, or None for a
    campaign whose pushes went (or will go) out at once."""
    rate = campaign.push_rate
    if not rate or campaign.pushes_due_at is None:
        return None
    due, pushes = campaign.pushes_due_at, campaign.pushes_paced
    estimated = campaign.status == CampaignStatus.SENDING and pending > 0
    if estimated:
        due = max(due, now) + timedelta(seconds=pending / rate)
        pushes += pending
    return {
        "rate": rate,
        "pushes": pushes,
        "last_due_at": due.isoformat(),
        "due_in_seconds": max(0, math.ceil((due - now).total_seconds())),
        "estimated": estimated,
    }


def describe(progress: dict[str, Any], zone: tzinfo, now: datetime) -> str:
    """A progress's pushes in words, e.g. "pushes paced at 500/s: all 100,000 wallets
    notified by 10:42 (in 3 min 20 s)"."""
    pace = progress["pushes"]
    if pace is None:
        # Unpaced, or paced but no batch has run yet: known once the campaign is done.
        done = progress["status"] in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)
        return "pushed at once" if done and progress["sent"] else "—"
    due = datetime.fromisoformat(pace["last_due_at"]).astimezone(zone)
    local_now = now.astimezone(zone)
    clock = due.strftime("%H:%M" if due.date() == local_now.date() else "%Y-%m-%d %H:%M")
    about = "about " if pace["estimated"] else ""
    count = f"{about or 'all '}{pace['pushes']:,} wallets"
    text = f"pushes paced at {pace['rate']:,}/s: {count} notified by {about}{clock}"
    if pace["due_in_seconds"] > 0:
        text += f" (in {duration(pace['due_in_seconds'])})"
    return text


def duration(seconds: int) -> str:
    """3 min 20 s, 2 h 5 min, 45 s."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
