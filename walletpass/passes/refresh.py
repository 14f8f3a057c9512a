"""A program's look or rules changed: its passes follow. One place for the admin pages and
the API, so that both reach the same passes. Flask-free; the caller's transaction
commits."""

from __future__ import annotations

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from walletpass.passes.models import Pass, PassStatus


def program_passes(program_id: int) -> ColumnElement[bool]:
    """Every active pass of a program, for :func:`walletpass.passes.changes.mark_changed`
    (quiet on Google: nothing about the holder changed): members' cards and coupons, and
    flyer coupons that carry the program's brand."""
    return (Pass.program_id == program_id) & (Pass.status == PassStatus.ACTIVE)


def move_to_template(
    session: Session, program_id: int, old_template: str, new_template: str
) -> None:
    """The program's cards render from its new template from now on: the passes that
    rendered from ``old_template``. Coupons issued in a loyalty program keep the coupon
    template (a coupon is not a loyalty card). In an offers program, whose cards are
    coupon passes that roll over from offer to offer, they all move. Mark the
    :func:`program_passes` changed afterwards so that wallets fetch the change."""
    session.execute(
        update(Pass)
        .where(Pass.program_id == program_id, Pass.template == old_template)
        .values(template=new_template)
        .execution_options(synchronize_session="fetch")
    )
