"""Exponential backoff with jitter: the one retry schedule of the outbox and of webhooks."""

from __future__ import annotations

import random


def backoff(
    attempt: int,
    *,
    first_s: float,
    cap_s: float,
    min_share: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    The step doubles from ``first_s`` up to ``cap_s``; jitter only shortens it, to between
    ``min_share`` and all of it, so a promised schedule is never exceeded and jobs that
    failed together (an APNs or CRM outage) do not come back as one wave.
    """
    step = min(first_s * 2 ** max(attempt - 1, 0), cap_s)
    return step * (min_share + (1 - min_share) * (rng or random).random())
