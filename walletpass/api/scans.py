"""POST /api/v1/scans and undo: the till's endpoint.

What a scan takes and answers, and how it is logged when refused, is the scan domain's
(:mod:`walletpass.scan.requests`), shared with the till page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.api.framework import Context, Routes
from walletpass.loyalty.ledger import Actor
from walletpass.scan import services as scan_services
from walletpass.scan.requests import (
    ScanIn,
    ScanOut,
    UndoOut,
    record_refused,
    scan_out,
    scan_request,
    undo,
)
from walletpass.tenancy.apikeys import AuthenticatedKey
from walletpass.tenancy.models import Store

SCAN_PROBLEMS = (
    errors.UnknownCode,
    errors.PassInactive,
    errors.InsufficientPoints,
    errors.RewardUnavailable,
    errors.UnknownReward,
    errors.CouponExpired,
    errors.CouponUsedUp,
    errors.OfferCapReached,
    errors.ActionNotAllowed,
    errors.DuplicateReceipt,
    errors.UnknownReceipt,
    errors.Conflict,
    errors.MembershipInactive,
)
routes = Routes()


def actor_for(session: Session, key: AuthenticatedKey, store_code: str | None) -> Actor:
    store_id = key.store_id
    if store_code:
        store = session.scalars(select(Store).where(Store.code == store_code)).one_or_none()
        if store is None:
            raise errors.ValidationFailed(
                f"no store {store_code!r}", errors=[{"field": "body.store", "message": "unknown"}]
            )
        if key.store_id is not None and store.id != key.store_id:
            raise errors.Forbidden("this till key belongs to another store")
        store_id = store.id
    return Actor("api_key", str(key.id), store_id)


def record_failure(
    session: Session, key: AuthenticatedKey, body: Any, exc: errors.WalletpassError
) -> None:
    if not isinstance(body, ScanIn):
        return
    record_refused(
        session,
        body,
        exc,
        actor_for(session, key, None),
        merchant_id=key.merchant_id,
        api_key_id=key.id,
    )


@routes.operation(
    "POST",
    "/scans",
    scopes=("till",),
    body=ScanIn,
    response=ScanOut,
    tag="till",
    problems=SCAN_PROBLEMS,
    on_error=record_failure,
)
def create_scan(ctx: Context) -> ScanOut:
    """Record a scan at the till: look up, purchase, stamp, redeem, refund."""
    body: ScanIn = ctx.body
    actor = actor_for(ctx.session, ctx.api_key, body.store)
    out = scan_services.apply_scan(
        ctx.session, ctx.settings, scan_request(body), actor, api_key_id=ctx.api_key.id
    )
    return scan_out(ctx.session, out)


@routes.operation(
    "POST",
    "/scans/<int:scan_id>/undo",
    scopes=("till",),
    response=UndoOut,
    tag="till",
    problems=(errors.NotFound, errors.UndoExpired),
)
def undo_scan(ctx: Context) -> UndoOut:
    """Undo a scan made by mistake (within 5 minutes)."""
    actor = actor_for(ctx.session, ctx.api_key, None)
    return undo(ctx.session, ctx.settings, ctx.path["scan_id"], actor)
