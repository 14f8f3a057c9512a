"""The one retry schedule: doubling steps up to a cap, jitter that only shortens them."""

from __future__ import annotations

import random

from walletpass.crm.outbound import retry_delay
from walletpass.jobs.backoff import backoff
from walletpass.jobs.worker import backoff_delay


def test_steps_double_to_the_cap_and_jitter_only_shortens_them():
    rng = random.Random(7)
    for attempt in range(1, 30):
        step = min(2.0 * 2 ** (attempt - 1), 3600.0)
        delays = [
            backoff(attempt, first_s=2, cap_s=3600, min_share=0.5, rng=rng) for _ in range(50)
        ]
        assert all(0.5 * step <= d <= step for d in delays)
        assert max(delays) - min(delays) > 0.1 * step  # spread out, not one wave


def test_the_outbox_and_the_webhooks_keep_their_own_schedules():
    rng = random.Random(1)
    assert 1.0 <= backoff_delay(1, rng) <= 2.0
    assert 1800.0 <= backoff_delay(40, rng) <= 3600.0
    assert 48.0 <= retry_delay(1, rng) <= 60.0
    assert 0.8 * 12 * 3600 <= retry_delay(40, rng) <= 12 * 3600
