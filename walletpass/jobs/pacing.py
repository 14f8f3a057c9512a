"""Paced jobs: spread a large batch of wallet pushes at the installation's push rate.

Every wallet push makes a phone fetch its pass at once, so a fan-out to 100,000 passes
sent as fast as APNs takes them (thousands a second) becomes 100,000 fetches queued at
the web service, which answer late or time out on the phone. A large change therefore
queues its pushes with ``run_at`` spread at WALLETPASS_PUSH_RATE a second; the worker
claims in ``run_at`` order and so sends them no faster.

The slots come from one shared cursor (:class:`~walletpass.jobs.models.PushPace`): each
batch reserves its span with one UPDATE ... RETURNING, so two fan-outs running at once,
in any process, follow one another instead of each pushing at the full rate. The
UPDATE's row lock is held until the batch commits: batches of large changes take turns
there, which is the point. Changes of a few passes (a till scan's) never come here and
are pushed at once, ahead of any paced backlog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import BindParameter, bindparam, case, text, update
from sqlalchemy.orm import Session

from walletpass.jobs.models import PushPace
from walletpass.jobs.queue import enqueue_many

_US = 1_000_000
_PACE = PushPace.__table__
_NOW_US: BindParameter[int] = bindparam("now_us")
_RESERVE = (
    update(_PACE)
    .where(_PACE.c.id == 1)
    .values(
        # The cursor never lags behind now: an idle installation's first push goes at once.
        next_slot_us=case((_PACE.c.next_slot_us > _NOW_US, _PACE.c.next_slot_us), else_=_NOW_US)
        + bindparam("span_us")
    )
    .returning(_PACE.c.next_slot_us)
)
# The row is made by migration 0012; a database built from the models (the tests') or
# emptied since gets it on first use.
_SEED = text("INSERT INTO push_pace (id, next_slot_us) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")


@dataclass(frozen=True)
class Slots:
    """``count`` consecutive push slots, ``1 / rate`` seconds apart from ``first``."""

    first: datetime
    count: int
    rate: int

    @property
    def step(self) -> timedelta:
        return timedelta(microseconds=_US // self.rate)

    def at(self, number: int) -> datetime:
        return self.first + self.step * number

    @property
    def last(self) -> datetime:
        return self.at(max(self.count - 1, 0))


def _epoch_us(moment: datetime) -> int:
    return round(moment.timestamp() * _US)


def reserve(session: Session, count: int, rate: int, now: datetime) -> Slots:
    """Take the next ``count`` slots at ``rate`` a second off the shared cursor, in the
    caller's transaction (a rolled-back batch leaves a gap, never an overlap)."""
    if rate <= 0 or count <= 0:
        raise ValueError("reserve needs a positive count and rate")
    span_us = -(-count * _US // rate)  # rounded up: the next batch starts after the last
    params = {"now_us": _epoch_us(now), "span_us": span_us}
    conn = session.connection()
    end = conn.execute(_RESERVE, params).scalar()
    if end is None:
        conn.execute(_SEED)
        end = conn.execute(_RESERVE, params).scalar_one()
    first = datetime.fromtimestamp((end - span_us) / _US, UTC)
    return Slots(first=first, count=count, rate=rate)


def enqueue_paced(
    session: Session,
    kind: str,
    items: Sequence[tuple[int | None, dict[str, Any], str | None]],
    *,
    rate: int,
    now: datetime,
) -> Slots | None:
    """Queue ``(merchant_id, payload, dedupe_key)`` items on consecutive slots of the
    shared cursor, in their order. Returns the slots (None for no items).

    An item whose dedupe key is already pending is absorbed as with
    :func:`~walletpass.jobs.queue.enqueue_many`; its slot stays empty.
    """
    if not items:
        return None
    slots = reserve(session, len(items), rate, now)
    number = 0
    for merchant_id, group in groupby(items, key=lambda item: item[0]):
        rows = [(payload, key) for _, payload, key in group]
        enqueue_many(
            session,
            kind,
            rows,
            merchant_id=merchant_id,
            run_at=slots.at(number),
            spacing=slots.step,
        )
        number += len(rows)
    return slots
