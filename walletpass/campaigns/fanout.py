"""Fan-out: send one batch of a campaign's recipients, set-based.

A batch marks its recipients sent (or skipped over the marketing budget), bumps their
passes with one UPDATE, queues one APNs push per device token (coalesced by the outbox)
and one Google ``addMessage`` per Google object, all in the batch job's transaction: a
crash re-runs the batch, and recipients already sent are not sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.orm import Session

from walletpass.apple.models import Registration
from walletpass.campaigns import budget
from walletpass.campaigns.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    RecipientStatus,
)
from walletpass.config import Settings
from walletpass.db import UTCDateTime, rowcount
from walletpass.events import emit
from walletpass.jobs.queue import enqueue_many
from walletpass.offers.models import Offer
from walletpass.passes.changes import PACE_ABOVE, Change, change_passes, mark_changed
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.models import Merchant

DEFAULT_TITLE = "News"
MEASURE_AFTER = timedelta(minutes=65)


def google_message_key(campaign_id: int, pass_id: int) -> str:
    return f"campaign:{campaign_id}:google:{pass_id}"


def parse_google_message_key(key: str | None) -> tuple[int, int] | None:
    """(campaign id, pass id) of a :func:`google_message_key`; None for another key."""
    parts = (key or "").split(":")
    if len(parts) != 4 or parts[0] != "campaign" or parts[2] != "google":
        return None
    if not (parts[1].isdigit() and parts[3].isdigit()):
        return None
    return int(parts[1]), int(parts[3])


def message_for(campaign: Campaign, variant: str | None, offer_title: str = "") -> tuple[str, str]:
    """(title, text) a recipient of ``variant`` is shown."""
    title, body = campaign.title, campaign.message
    for item in campaign.variants or []:
        if item.get("name") == variant:
            title = item.get("title") or title
            body = item.get("message") or body
            break
    return (title or offer_title or DEFAULT_TITLE), body


def send_batch(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    first_id: int,
    last_id: int,
    now: datetime,
) -> dict[str, int]:
    """Send the pending recipients with ids in [first_id, last_id]. Returns counts."""
    rows = session.execute(
        select(CampaignRecipient.id, CampaignRecipient.pass_id, CampaignRecipient.variant)
        .where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.id.between(first_id, last_id),
            CampaignRecipient.status == RecipientStatus.PENDING,
        )
        .order_by(CampaignRecipient.id)
    ).all()
    counts = {"sent": 0, "skipped_budget": 0, "skipped_no_pass": 0}
    change = None
    if rows:
        counts, change = _send_rows(session, settings, campaign, rows, now)
    _count_and_maybe_finish(session, campaign, counts, now, change)
    return counts


def _send_rows(
    session: Session, settings: Settings, campaign: Campaign, rows: Sequence[Any], now: datetime
) -> tuple[dict[str, int], Change]:
    pass_ids = [r.pass_id for r in rows if r.pass_id is not None]
    live = {
        pid: object_id
        for pid, object_id in session.execute(
            select(Pass.id, Pass.google_object_id).where(
                Pass.id.in_(pass_ids), Pass.status == PassStatus.ACTIVE
            )
        ).all()
    }
    merchant = session.get(Merchant, campaign.merchant_id)
    over = budget.over_budget(session, live, now, budget.limits_for(merchant))
    to_send = [r for r in rows if r.pass_id in live and r.pass_id not in over]
    no_pass = [r.id for r in rows if r.pass_id not in live]
    over_ids = [r.id for r in rows if r.pass_id in over]
    send_ids = [r.id for r in to_send]
    send_passes = [r.pass_id for r in to_send]
    apple_passes = set(
        session.scalars(
            select(Registration.pass_id).where(Registration.pass_id.in_(send_passes)).distinct()
        )
    )
    google_passes = {pid for pid in send_passes if live[pid]} if settings.google_enabled else set()

    def mark(ids: list[int], **values: Any) -> None:
        if ids:
            session.execute(
                update(CampaignRecipient)
                .where(CampaignRecipient.id.in_(ids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    mark(send_ids, status=RecipientStatus.SENT, sent_at=now)
    mark([r.id for r in to_send if r.pass_id in apple_passes], via_apple=True)
    mark([r.id for r in to_send if r.pass_id in google_passes], via_google=True)
    mark(over_ids, status=RecipientStatus.SKIPPED, skip_reason="budget")
    mark(no_pass, status=RecipientStatus.SKIPPED, skip_reason="no_pass")

    if google_passes:
        _queue_google_messages(session, campaign, to_send, google_passes, live, now)
    # The overlay is read from the recipient rows at render time; bumping the passes
    # makes both wallets fetch it. The card's own offer module shows it on Google too:
    # silently, the message notifies. A large campaign's every batch is paced, the last
    # and smaller one too, so its pushes follow the others' instead of jumping them.
    change = change_passes(
        session,
        settings,
        passes=send_passes,
        notify=False,
        now=now,
        paced=campaign.total > PACE_ABOVE,
    )
    counts = {
        "sent": len(send_ids),
        "skipped_budget": len(over_ids),
        "skipped_no_pass": len(no_pass),
    }
    return counts, change


def _queue_google_messages(
    session: Session,
    campaign: Campaign,
    to_send: Sequence[Any],
    google_passes: set[int],
    objects: dict[int, str | None],
    now: datetime,
) -> None:
    offer_title = _offer_title(session, campaign)
    loud = budget.google_may_notify(
        session, [obj for pid in google_passes if (obj := objects[pid])], now
    )
    messages = []
    for r in to_send:
        if r.pass_id not in google_passes:
            continue
        header, body = message_for(campaign, r.variant, offer_title)
        payload = {
            "pass_id": r.pass_id,
            "message_id": f"campaign-{campaign.id}",
            "header": header,
            "body": body,
            "notify": objects[r.pass_id] in loud,
        }
        messages.append((payload, google_message_key(campaign.id, r.pass_id)))
    enqueue_many(session, "google.message", messages, merchant_id=campaign.merchant_id, run_at=now)


def _offer_title(session: Session, campaign: Campaign) -> str:
    if campaign.offer_id is None:
        return ""
    offer = session.get(Offer, campaign.offer_id)
    return offer.title if offer else ""


def _count_and_maybe_finish(
    session: Session,
    campaign: Campaign,
    counts: dict[str, int],
    now: datetime,
    change: Change | None = None,
) -> None:
    # The UPDATE takes the campaign's row lock until commit: concurrent batches on
    # PostgreSQL pass this point one at a time, so the last one to commit sees every
    # other batch's recipients as sent and is the one that finishes the campaign.
    paced: dict[str, Any] = {}
    if change is not None and change.last_push_at is not None:
        due = literal(change.last_push_at, UTCDateTime())
        paced = {
            "push_rate": change.push_rate,
            "pushes_paced": Campaign.pushes_paced + change.paced_pushes,
            "pushes_due_at": case(
                (Campaign.pushes_due_at.is_(None) | (Campaign.pushes_due_at < due), due),
                else_=Campaign.pushes_due_at,
            ),
        }
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            sent=Campaign.sent + counts["sent"],
            skipped_budget=Campaign.skipped_budget + counts["skipped_budget"],
            excluded_no_pass=Campaign.excluded_no_pass + counts["skipped_no_pass"],
            **paced,
        )
        .execution_options(synchronize_session=False)
    )
    pending = session.scalar(
        select(func.count())
        .select_from(CampaignRecipient)
        .where(
            CampaignRecipient.campaign_id == campaign.id,
            CampaignRecipient.status == RecipientStatus.PENDING,
        )
    )
    if not pending:
        finish(session, campaign, now)


def finish(session: Session, campaign: Campaign, now: datetime) -> bool:
    """Mark the campaign finished and emit ``campaign.finished`` (once)."""
    done = rowcount(
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.SENDING)
            .values(status=CampaignStatus.FINISHED, finished_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if not done:
        return False
    session.refresh(campaign)
    # Deliveries are fetches within the hour after the send: measure once it has passed.
    enqueue_many(
        session,
        "campaign.measure",
        [({"campaign_id": campaign.id}, f"campaign:{campaign.id}:measure")],
        merchant_id=campaign.merchant_id,
        run_at=now + MEASURE_AFTER,
    )
    emit(
        session,
        campaign.merchant_id,
        "campaign.finished",
        {
            "campaign_id": campaign.id,
            "name": campaign.name,
            "recipients": campaign.total,
            "sent": campaign.sent,
            "holdout": campaign.holdout_count,
            "skipped_budget": campaign.skipped_budget,
            "excluded_no_consent": campaign.excluded_no_consent,
            "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
            "finished_at": now.isoformat(),
        },
    )
    return True


def refresh_sent_passes(
    session: Session, settings: Settings, campaign: Campaign, now: datetime
) -> int:
    """The overlay ended: bump the passes that showed it, silently, so wallets revert."""
    pass_ids = sorted(
        {
            pass_id
            for pass_id in session.scalars(
                select(CampaignRecipient.pass_id).where(
                    CampaignRecipient.campaign_id == campaign.id,
                    CampaignRecipient.status == RecipientStatus.SENT,
                    CampaignRecipient.pass_id.is_not(None),
                )
            )
            if pass_id is not None  # for the type: the query leaves NULL out
        }
    )
    mark_changed(session, settings, passes=pass_ids, notify=False, now=now)
    return len(pass_ids)
