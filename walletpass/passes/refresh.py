"""A program's look or rules changed: its passes follow. One place for the admin pages and
the API, so that both reach the same passes. Flask-free; the caller's transaction
commits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.passes.models import Pass, PassStatus
from walletpass.passes.services import pass_changed

BATCH = 500


def _id_batches(session: Session, query: Any, size: int) -> Iterator[list[int]]:
    # Keyset pagination over ids: each batch loads at most ``size`` rows, so a program
    # with 100 000 members does not pull them all into the session at once.
    last = 0
    while True:
        ids = list(session.scalars(query.where(Pass.id > last).order_by(Pass.id).limit(size)))
        if not ids:
            return
        yield ids
        last = ids[-1]


def refresh_program_passes(
    session: Session, settings: Settings, program_id: int, *, batch_size: int = BATCH
) -> int:
    """Mark every active pass of a program changed, so wallets fetch the new version:
    members' cards and coupons, and flyer coupons that carry the program's brand. Quiet
    on Google: nothing about the holder changed.

    :return: how many passes were refreshed.
    """
    query = select(Pass.id).where(Pass.program_id == program_id, Pass.status == PassStatus.ACTIVE)
    count = 0
    for ids in _id_batches(session, query, batch_size):
        batch = list(session.scalars(select(Pass).where(Pass.id.in_(ids)).order_by(Pass.id)))
        for pass_row in batch:
            pass_changed(session, pass_row, notify=False, settings=settings)
            count += 1
        # Flushed, the batch can leave the identity map before the next one is loaded.
        session.flush()
        for pass_row in batch:
            session.expunge(pass_row)
    return count


def move_to_template(
    session: Session, program_id: int, old_template: str, new_template: str
) -> None:
    """The program's cards render from its new template from now on: the passes that
    rendered from ``old_template``. Coupons issued in a loyalty program keep the coupon
    template (a coupon is not a loyalty card). In an offers program, whose cards are
    coupon passes that roll over from offer to offer, they all move. Call
    :func:`refresh_program_passes` afterwards so that wallets fetch the change."""
    session.execute(
        update(Pass)
        .where(Pass.program_id == program_id, Pass.template == old_template)
        .values(template=new_template)
        .execution_options(synchronize_session="fetch")
    )
