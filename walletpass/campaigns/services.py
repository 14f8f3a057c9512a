"""Campaigns: create, schedule, launch (audience, holdout, variants, fan-out), progress.

A campaign is shown on the member's loyalty card: Apple has no message API, so the message
becomes the card's current-offer field (walletpass.campaigns.state supplies it to the pass
variables; the field's changeMessage puts it on the lock screen), and Google gets the
message through ``addMessage`` (job ``google.message``). Launching writes one
CampaignRecipient row per audience member, then queues ``campaign.fanout`` jobs of
:data:`BATCH_SIZE` recipients each (walletpass.campaigns.fanout does the sending).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.campaigns import audience as audiences
from walletpass.campaigns import budget
from walletpass.campaigns.fanout import finish
from walletpass.campaigns.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    RecipientStatus,
)
from walletpass.campaigns.pace import push_pace
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.queue import enqueue
from walletpass.loyalty.models import Program
from walletpass.offers.models import Offer
from walletpass.tenancy.models import Merchant

BATCH_SIZE = 1000
# Fan-out batches are spread out by this much each, so a balance change queued while a
# large campaign is sending waits behind one batch's pushes, not behind all of them
# (the worker claims jobs in run_at order). 100,000 recipients take ~25 s longer.
BATCH_SPACING = timedelta(seconds=0.25)
# Without an offer's end date, the message stays on the card this long.
DEFAULT_DISPLAY = timedelta(days=7)
MAX_VARIANTS = 5
MAX_HOLDOUT = 0.5
TITLE_MAX = 60
MESSAGE_MAX = 500


def _fail(field: str, message: str) -> errors.WalletpassError:
    return errors.ValidationFailed(
        f"{field}: {message}", errors=[{"field": field, "message": message}]
    )


def create_campaign(
    session: Session,
    settings: Settings,
    *,
    merchant_id: int,
    name: str,
    message: str,
    audience: dict[str, Any],
    program_id: int | None = None,
    offer_id: int | None = None,
    variants: list[dict[str, Any]] | None = None,
    holdout_share: float = 0.0,
    scheduled_at: datetime | None = None,
    title: str | None = None,
    ends_at: datetime | None = None,
    window_days: int = 14,
    seed: int | None = None,
) -> Campaign:
    """Create a campaign; with ``scheduled_at`` it is also scheduled (see :func:`schedule`).

    :param variants: ``[{"name": "A", "message": "...", "title": "...", "share": 0.5}]``;
        shares must add up to 1. Empty or None: one variant, the campaign's message.
    :param holdout_share: 0 to 0.5, the share of the audience held back (never sent).
    :param ends_at: when the message leaves the card; default the offer's end, or 7 days.
    :param seed: seeds the holdout and variant draw (random if not given).
    :raise ValidationFailed: with ``errors=[{"field", "message"}]`` for each problem.
    """
    problems: list[dict[str, str]] = []

    def problem(field: str, text: str) -> None:
        problems.append({"field": field, "message": text})

    name = (name or "").strip()
    message = (message or "").strip()
    title = (title or "").strip()
    _check_lengths(name, title, message, problem)
    clean_audience: dict[str, Any] = {}
    try:
        clean_audience = audiences.validate(audience or {})
    except audiences.AudienceError as exc:
        problem(exc.field, exc.message)
    offer = _checked_targets(session, merchant_id, program_id, offer_id, problem)
    if offer is not None and not message:
        message = offer.description.strip()
    share = _checked_share(holdout_share, problem)
    clean_variants = _clean_variants(variants or [], problem)
    if not message and not (clean_variants and all(v["message"] for v in clean_variants)):
        problem("message", "write the message to show (or pick an offer with a description)")
    _check_timing(scheduled_at, ends_at, window_days, problem)
    if problems:
        raise errors.ValidationFailed(
            "; ".join(f"{p['field']}: {p['message']}" for p in problems), errors=problems
        )
    campaign = Campaign(
        merchant_id=merchant_id,
        program_id=program_id,
        offer_id=offer_id,
        name=name,
        title=title or (offer.title[:TITLE_MAX] if offer else ""),
        message=message,
        audience=clean_audience,
        variants=clean_variants,
        holdout_share=share,
        seed=seed if seed is not None else secrets.randbelow(2**31),
        ends_at=ends_at,
        window_days=int(window_days),
        status=CampaignStatus.DRAFT,
    )
    session.add(campaign)
    session.flush()
    if scheduled_at is not None:
        schedule(session, campaign, scheduled_at)
    return campaign


# Each check reports to create_campaign's problem(field, message), in the order the
# form's fields are listed, so every problem of a form is reported at once.
Problem = Callable[[str, str], None]


def _check_lengths(name: str, title: str, message: str, problem: Problem) -> None:
    if not name or len(name) > 200:
        problem("name", "give the campaign a name (at most 200 characters)")
    if len(title) > TITLE_MAX:
        problem("title", f"at most {TITLE_MAX} characters")
    if len(message) > MESSAGE_MAX:
        problem("message", f"at most {MESSAGE_MAX} characters")


def _checked_targets(
    session: Session,
    merchant_id: int,
    program_id: int | None,
    offer_id: int | None,
    problem: Problem,
) -> Offer | None:
    """The campaign's offer, when it names a usable one of this merchant's."""
    if program_id is not None:
        program = session.get(Program, program_id)
        if program is None or program.merchant_id != merchant_id:
            problem("program_id", "no such program")
    if offer_id is None:
        return None
    offer = session.get(Offer, offer_id)
    if offer is None or offer.merchant_id != merchant_id:
        problem("offer_id", "no such offer")
        return None
    if not offer.active or (offer.valid_until and offer.valid_until <= utcnow()):
        problem("offer_id", "this offer has ended or is inactive")
    return offer


def _checked_share(holdout_share: float, problem: Problem) -> float:
    try:
        share = float(holdout_share)
    except (TypeError, ValueError):
        share = -1.0
    if not 0.0 <= share <= MAX_HOLDOUT:
        problem("holdout_share", f"between 0 and {MAX_HOLDOUT} (a share, 0.1 = 10%)")
    return share


def _check_timing(
    scheduled_at: datetime | None, ends_at: datetime | None, window_days: int, problem: Problem
) -> None:
    for field, moment in (("scheduled_at", scheduled_at), ("ends_at", ends_at)):
        if moment is not None and moment.tzinfo is None:
            problem(field, "needs a time zone")
    if ends_at is not None and ends_at.tzinfo is not None and ends_at <= utcnow():
        problem("ends_at", "must be in the future")
    if not 1 <= int(window_days) <= 90:
        problem("window_days", "between 1 and 90 days")


def _clean_variants(variants: list[dict[str, Any]], problem: Problem) -> list[dict[str, Any]]:
    if not variants:
        return []
    if not isinstance(variants, list) or len(variants) > MAX_VARIANTS:
        problem("variants", f"a list of at most {MAX_VARIANTS} variants")
        return []
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, raw in enumerate(variants):
        field = f"variants[{i}]"
        if not isinstance(raw, dict):
            problem(field, "an object with name, message and share")
            continue
        vname = str(raw.get("name") or chr(ord("A") + i)).strip()
        if not vname or len(vname) > 32 or vname in names:
            problem(f"{field}.name", "a unique name of at most 32 characters")
        names.add(vname)
        vmessage = str(raw.get("message") or "").strip()
        vtitle = str(raw.get("title") or "").strip()
        if len(vmessage) > MESSAGE_MAX or len(vtitle) > TITLE_MAX:
            problem(field, f"title ≤ {TITLE_MAX}, message ≤ {MESSAGE_MAX} characters")
        try:
            vshare = float(raw.get("share", 1.0 / len(variants)))
        except (TypeError, ValueError):
            vshare = -1.0
        if not 0.0 < vshare <= 1.0:
            problem(f"{field}.share", "a share above 0 and at most 1")
        out.append({"name": vname, "title": vtitle, "message": vmessage, "share": vshare})
    if out and abs(sum(v["share"] for v in out) - 1.0) > 0.001:
        problem("variants", "the variant shares must add up to 1")
    return out


def schedule(session: Session, campaign: Campaign, at: datetime) -> datetime:
    """Queue the launch for ``at`` (moved past the merchant's quiet hours). Returns the
    moment it will run."""
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        raise errors.Conflict(f"campaign is {campaign.status}; only a draft can be scheduled")
    merchant = session.get(Merchant, campaign.merchant_id)
    assert merchant is not None
    run_at = budget.defer_for_quiet_hours(merchant, max(at, utcnow()))
    campaign.scheduled_at = at
    campaign.status = CampaignStatus.SCHEDULED
    # A re-schedule replaces the pending launch job rather than adding a second one.
    session.execute(
        update(Job)
        .where(Job.dedupe_key == _launch_key(campaign.id), Job.status == JobStatus.PENDING)
        .values(run_at=run_at)
        .execution_options(synchronize_session=False)
    )
    enqueue(
        session,
        "campaign.launch",
        {"campaign_id": campaign.id},
        merchant_id=campaign.merchant_id,
        dedupe_key=_launch_key(campaign.id),
        run_at=run_at,
    )
    session.flush()
    return run_at


def _launch_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}:launch"


def cancel(session: Session, campaign: Campaign) -> None:
    """Stop a campaign: pending recipients are not sent, and cards that already show its
    message drop it (the expire job runs now and refreshes them).

    :raise Conflict: it was already cancelled.
    """
    if campaign.status == CampaignStatus.CANCELLED:
        raise errors.Conflict("campaign is already cancelled")
    # A finished campaign can be cancelled too: that takes its message off the cards.
    was_sending = campaign.status in (CampaignStatus.SENDING, CampaignStatus.FINISHED)
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = utcnow()
    session.flush()
    if was_sending:
        # Refresh the cards already showing it now rather than when it would have ended.
        session.execute(
            update(Job)
            .where(
                Job.dedupe_key == f"campaign:{campaign.id}:expire",
                Job.status == JobStatus.PENDING,
            )
            .values(run_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def split_counts(total: int, shares: list[float]) -> list[int]:
    """``total`` split by ``shares`` with largest-remainder rounding (sums to ``total``)."""
    raw = [total * s / sum(shares) for s in shares]
    counts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def assign(
    n: int, holdout_share: float, variants: list[dict[str, Any]], seed: int
) -> tuple[list[bool], list[str | None]]:
    """Holdout flags and variant names for ``n`` audience members (in member order).

    Shuffle once with a seeded RNG and cut: exactly ``round(n * share)`` are held out
    (never a coin flip per member, whose share would wander by a few points on small
    audiences), then the rest are cut into variants by their shares.
    """
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = int(n * holdout_share + 0.5)
    holdout = [False] * n
    variant: list[str | None] = [None] * n
    for pos in order[:k]:
        holdout[pos] = True
    treated = order[k:]
    if variants:
        start = 0
        for v, count in zip(
            variants, split_counts(len(treated), [v["share"] for v in variants]), strict=True
        ):
            for pos in treated[start : start + count]:
                variant[pos] = v["name"]
            start += count
    return holdout, variant


def launch(
    session: Session, settings: Settings, campaign: Campaign, now: datetime | None = None
) -> int:
    """Choose the audience, hold out and split it, write the recipients, queue the fan-out.

    Idempotent: a campaign already launched returns its recipient count unchanged.

    :return: the number of recipients written (treated and held out).
    :raise Conflict: the campaign was cancelled.
    """
    now = now or utcnow()
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.FINISHED):
        return campaign.total + campaign.holdout_count
    if campaign.status == CampaignStatus.CANCELLED:
        raise errors.Conflict("campaign was cancelled")
    merchant = session.get(Merchant, campaign.merchant_id)
    assert merchant is not None
    counts = audiences.count_matching(
        session, campaign.merchant_id, campaign.audience, program_id=campaign.program_id, now=now
    )
    rows = session.execute(
        audiences.audience_query(
            session,
            campaign.merchant_id,
            campaign.audience,
            program_id=campaign.program_id,
            now=now,
        )
    ).all()
    holdout, variant = assign(len(rows), campaign.holdout_share, campaign.variants, campaign.seed)
    if rows:
        # Core insert on the table: at 100,000 rows the ORM's per-row work dominates.
        session.execute(
            insert(CampaignRecipient.__table__),
            [
                {
                    "merchant_id": campaign.merchant_id,
                    "campaign_id": campaign.id,
                    "member_id": member_id,
                    "pass_id": pass_id,
                    "variant": variant[i],
                    "holdout": holdout[i],
                    "status": RecipientStatus.HOLDOUT if holdout[i] else RecipientStatus.PENDING,
                }
                for i, (member_id, pass_id) in enumerate(rows)
            ],
        )
    held = sum(holdout)
    campaign.total = len(rows) - held
    campaign.holdout_count = held
    campaign.excluded_no_consent = counts["no_consent"]
    campaign.excluded_no_pass = counts["no_pass"]
    campaign.status = CampaignStatus.SENDING
    campaign.started_at = now
    if campaign.ends_at is None:
        offer = session.get(Offer, campaign.offer_id) if campaign.offer_id else None
        campaign.ends_at = (offer.valid_until if offer else None) or now + DEFAULT_DISPLAY
    session.flush()
    ids = session.scalars(
        select(CampaignRecipient.id)
        .where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.status == RecipientStatus.PENDING,
        )
        .order_by(CampaignRecipient.id)
    ).all()
    for number, start in enumerate(range(0, len(ids), BATCH_SIZE)):
        chunk = ids[start : start + BATCH_SIZE]
        enqueue(
            session,
            "campaign.fanout",
            {"campaign_id": campaign.id, "first_id": chunk[0], "last_id": chunk[-1]},
            merchant_id=campaign.merchant_id,
            dedupe_key=f"campaign:{campaign.id}:fanout:{chunk[0]}",
            run_at=budget.defer_for_quiet_hours(merchant, now + BATCH_SPACING * number),
        )
    enqueue(
        session,
        "campaign.expire",
        {"campaign_id": campaign.id},
        merchant_id=campaign.merchant_id,
        dedupe_key=f"campaign:{campaign.id}:expire",
        run_at=campaign.ends_at,
    )
    if not ids:
        finish(session, campaign, now)
    return len(rows)


def progress(session: Session, campaign_id: int) -> dict[str, Any]:
    """Recipients total / sent / skipped / failed / pending, and the pushes' pace, for
    the polled progress view.

    ``failed``: recipients still pending whose fan-out batch gave up (a dead job), plus
    Google messages that failed for good.
    """
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise errors.NotFound(f"no campaign {campaign_id}")
    by_status: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(CampaignRecipient.status, func.count())
            .where(CampaignRecipient.campaign_id == campaign_id)
            .group_by(CampaignRecipient.status)
        )
    }
    failed = 0
    for job in session.scalars(
        select(Job).where(
            Job.kind == "campaign.fanout",
            Job.status == JobStatus.DEAD,
            Job.dedupe_key.like(f"campaign:{campaign_id}:fanout:%"),
        )
    ):
        failed += (
            session.scalar(
                select(func.count())
                .select_from(CampaignRecipient)
                .where(
                    CampaignRecipient.campaign_id == campaign_id,
                    CampaignRecipient.status == RecipientStatus.PENDING,
                    CampaignRecipient.id.between(job.payload["first_id"], job.payload["last_id"]),
                )
            )
            or 0
        )
    failed += (
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(
                Job.kind == "google.message",
                Job.status == JobStatus.DEAD,
                Job.dedupe_key.like(f"campaign:{campaign_id}:google:%"),
            )
        )
        or 0
    )
    sent = by_status.get(RecipientStatus.SENT, 0)
    skipped = by_status.get(RecipientStatus.SKIPPED, 0)
    pending = by_status.get(RecipientStatus.PENDING, 0)
    total = campaign.total
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "total": total,
        "sent": sent,
        "skipped": skipped,
        "skipped_budget": campaign.skipped_budget,
        "pending": pending,
        "failed": failed,
        "holdout": by_status.get(RecipientStatus.HOLDOUT, 0),
        "excluded_no_consent": campaign.excluded_no_consent,
        "excluded_no_pass": campaign.excluded_no_pass,
        "done": total - pending,
        "percent": round(100.0 * (total - pending) / total, 1) if total else 100.0,
        "scheduled_at": _iso(campaign.scheduled_at),
        "started_at": _iso(campaign.started_at),
        "finished_at": _iso(campaign.finished_at),
        # How the Apple pushes are paced, None when they go at once (campaigns.pace).
        "pushes": push_pace(campaign, pending, utcnow()),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def preview_audience(
    session: Session,
    merchant_id: int,
    audience: dict[str, Any],
    program_id: int | None = None,
) -> dict[str, int]:
    """How many members an audience reaches now, for the create page."""
    try:
        clean = audiences.validate(audience)
    except audiences.AudienceError as exc:
        raise _fail(exc.field, exc.message) from exc
    return audiences.count_matching(
        session, merchant_id, clean, program_id=program_id, now=utcnow()
    )
