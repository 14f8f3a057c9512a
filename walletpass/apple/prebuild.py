"""Sign the passes a push is about to announce, before it goes out.

Each phone that receives a push fetches its changed passes within seconds, all of them
at once after a campaign. Signing is most of a fetch's cost, so the push job signs the
changed passes of the devices it is about to wake, and keeps the parts on the pass rows
(walletpass.passes.stored): the herd of fetches that follows reads them and renders
nothing. The signing runs in a read-only transaction (on SQLite it must not hold the one
write lock while it signs a thousand passes); a short transaction then writes what was
signed, for the versions it was signed for only, and commits before the pushes leave.

A pass that fails to build is left to its fetch, which fails the same way in front of
the log; the push goes out regardless, as it did before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletpass.apple.models import Device, Registration
from walletpass.cards.build import build_bundle
from walletpass.jobs.registry import JobContext
from walletpass.passes.models import Pass
from walletpass.passes.services import Bundle, remember_signature

log = logging.getLogger(__name__)


def sign_before_push(
    ctx: JobContext, merchant_id: int | None, topic: str, tokens: Sequence[str]
) -> int:
    """Sign the passes of these devices whose version has no kept signature; returns how
    many were signed (or re-kept)."""
    if ctx.runtime is None:
        return 0
    with ctx.runtime.transaction(merchant_id, readonly=True) as session:
        built = _build(session, ctx, topic, tokens)
    if built:
        # Committed before the pushes go out, in a transaction of its own: a phone's fetch
        # must find them, and on SQLite the job's transaction must not hold the write
        # lock while the pushes are sent.
        with ctx.runtime.transaction(merchant_id) as session:
            for pass_id, bundle in built:
                remember_signature(session, pass_id, bundle)
    return len(built)


def _build(
    session: Session, ctx: JobContext, topic: str, tokens: Sequence[str]
) -> list[tuple[int, Bundle]]:
    passes = session.scalars(
        select(Pass)
        .join(Registration, Registration.pass_id == Pass.id)
        .join(Device, Device.id == Registration.device_id)
        .where(
            Device.pass_type_id == topic,
            Device.push_token.in_(tokens),
            or_(Pass.signed_version.is_(None), Pass.signed_version != Pass.version),
        )
        .distinct()
    ).all()
    built = []
    for pass_row in passes:
        try:
            bundle = build_bundle(session, ctx.settings, pass_row)
        except Exception:
            log.exception("pass %s could not be built before its push", pass_row.serial)
            continue
        if bundle.keep is not None:
            built.append((pass_row.id, bundle))
    return built
