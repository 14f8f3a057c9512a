"""A reward's dates: the cards that list it follow when it starts and when it ends.

A member's card lists the rewards redeemable now (walletpass.cards reads the dates at
render time), but a wallet fetches a pass only when told it changed. Every save of a
reward goes through :func:`reward_saved`: the program's cards are marked changed at once
and a ``reward.window`` job is queued at the reward's future start and end.

``reward.window``  ``{"reward_id", "at"}``: the reward's start or end ``at`` (ISO 8601)
    has come; the program's cards are marked changed. A job whose ``at`` is no longer
    one of the reward's dates (they were edited since) does nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.jobs.moments import enqueue_at_moments, moment_due
from walletpass.jobs.registry import JobContext, handler
from walletpass.loyalty.models import Reward
from walletpass.passes.changes import mark_changed
from walletpass.passes.refresh import program_passes

if TYPE_CHECKING:
    from walletpass.jobs.models import Job

WINDOW_JOB = "reward.window"


def reward_saved(
    session: Session, settings: Settings, reward: Reward, now: datetime | None = None
) -> None:
    """The reward was created or changed: the program's cards list it afresh now, and at
    its start and end."""
    now = now or utcnow()
    session.flush()
    mark_changed(session, settings, passes=program_passes(reward.program_id), notify=False)
    enqueue_at_moments(
        session,
        WINDOW_JOB,
        {"reward_id": reward.id},
        (reward.valid_from, reward.valid_until),
        merchant_id=reward.merchant_id,
        now=now,
    )


@handler(WINDOW_JOB)
def reward_window(ctx: JobContext, job: Job) -> None:
    reward = ctx.session.get(Reward, job.payload.get("reward_id"))
    if reward is None or not reward.active:
        return  # retired: its retirement already refreshed the cards
    if moment_due(job, (reward.valid_from, reward.valid_until)) is None:
        return
    mark_changed(ctx.session, ctx.settings, passes=program_passes(reward.program_id), notify=False)
