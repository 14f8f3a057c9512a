"""Outbox handlers that bring Google Wallet objects in line with our passes.

``google.sync``     payload ``{"pass_id": int, "notify": bool}``
    Upsert the pass's class (once per process per class body) and PATCH its object with
    whole arrays and the state for the pass status. NOTIFY_ON_UPDATE only on a loyalty
    card, when asked, when the 24 h budget allows, and when the write changes what the
    holder is told of (objects.notifying_fields: balance, tier, rewards) compared with
    what Google holds: a no-op or a retried write that already landed goes silently.
    A loyalty card's write carries its linked offers (walletpass.google.links): the
    offer objects of the member's live coupons are inserted first. A member's coupon's
    write reads their cards and queues a sync of each that links it when it should not
    (used up, voided, ended) or the other way round.
``google.message``  payload ``{"pass_id": int, "message_id": str, "header": str,
                    "body": str, "notify": bool}``
    Add a message to the pass's object, once per ``message_id``, keeping at most 10.

Failures: GoogleTransient → RetryLater, GooglePermanent → PermanentFailure; QuotaExceeded
on a notifying write → the same write again, silently, recorded in the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from walletpass.cards.variables import pass_variables
from walletpass.db import utcnow
from walletpass.google import budget
from walletpass.google.client import (
    GoogleNotFound,
    GooglePermanent,
    GoogleQuotaExceeded,
    GoogleTransient,
    GoogleWalletClient,
    shared_client,
)
from walletpass.google.links import live_coupon_passes, loyalty_cards
from walletpass.google.objects import build_pass_resources, notifying_fields
from walletpass.jobs.registry import JobContext, PermanentFailure, RetryLater, handler
from walletpass.passes.changes import queue_google_sync
from walletpass.passes.models import Pass

if TYPE_CHECKING:
    from walletpass.jobs.models import Job

log = logging.getLogger(__name__)

MAX_MESSAGES = 10
# Quota refusals on a silent write are API quota, not the per-pass notification budget:
# they reset slowly, so wait longer than the default backoff.
QUOTA_RETRY_SECONDS = 15 * 60
T = TypeVar("T")


def client_for(ctx: JobContext) -> GoogleWalletClient:
    """The worker's long-lived client; the runtime closes ``ctx.services`` entries on exit."""
    return shared_client(ctx.services, ctx.settings)


def now() -> datetime:
    return utcnow()


def _load(ctx: JobContext, job: Job) -> Pass | None:
    if not ctx.settings.google_enabled:
        log.info("google job %s skipped: Google Wallet not configured", job.id)
        return None
    pass_id = job.payload.get("pass_id")
    pass_row = ctx.session.get(Pass, pass_id) if pass_id is not None else None
    if pass_row is None or not pass_row.google_object_id:
        # Gone, or never offered to Google Wallet (no save link yet): nothing to update.
        # The save link inserts the object with its then-current content.
        return None
    return pass_row


def _run(fn: Callable[[], T], *, quota_passthrough: bool = False) -> T:
    """Translate Google errors into the outbox's retry vocabulary.

    :param quota_passthrough: let GoogleQuotaExceeded through, for a notifying write that
        the caller will redo silently.
    """
    try:
        return fn()
    except GoogleTransient as exc:
        raise RetryLater(str(exc), delay=exc.retry_after) from exc
    except GoogleQuotaExceeded as exc:
        if quota_passthrough:
            raise
        raise RetryLater(str(exc), delay=QUOTA_RETRY_SECONDS) from exc
    except GooglePermanent as exc:
        raise PermanentFailure(str(exc)) from exc


@handler("google.sync")
def sync_pass(ctx: JobContext, job: Job) -> None:
    pass_row = _load(ctx, job)
    if pass_row is None:
        return
    client = client_for(ctx)
    if pass_row.coupon_id is None and pass_row.member_id is not None:
        _insert_linked_offers(ctx, client, pass_row.member_id)
    variables = pass_variables(ctx.session, pass_row, ctx.settings)
    try:
        res = build_pass_resources(ctx.session, ctx.settings, pass_row, variables)
    except ValueError as exc:
        raise PermanentFailure(str(exc)) from exc
    _run(lambda: client.ensure_class(res.class_resource, res.class_body))  # type: ignore[arg-type]
    if pass_row.coupon_id is not None and pass_row.member_id is not None:
        _relink_cards(ctx, client, pass_row, res.object_id)
    moment = now()
    notify = (
        bool(job.payload.get("notify"))
        # Offers have no allowlisted field to notify of: Google's own expiry notice and
        # our messages speak for them.
        and res.object_resource == "loyaltyObject"
        and budget.may_notify(ctx.session, res.object_id, moment)
    )
    if notify:
        current = _run(lambda: _get_or_none(client, res.object_resource, res.object_id))
        if current is None or notifying_fields(current) == notifying_fields(res.object_body):
            # Not on Google (the insert below never notifies), or nothing the holder is
            # told of changed: a no-op, or this write already landed on an earlier try
            # whose transaction (and budget row) was lost.
            log.info("google %s: nothing to notify of; updating silently", res.object_id)
            notify = False

    def write(notify_now: bool) -> None:
        try:
            client.patch(res.object_resource, res.object_id, res.object_body, notify=notify_now)  # type: ignore[arg-type]
        except GoogleNotFound:
            # Saved through a full-object link while REST was down: Google only creates
            # the object on save. Insert it now; an insert never notifies.
            client.insert_or_patch(res.object_resource, res.object_body)  # type: ignore[arg-type]

    if notify:
        try:
            _run(lambda: write(True), quota_passthrough=True)
        except GoogleQuotaExceeded:
            log.info("google %s: notification quota used up; updating silently", res.object_id)
            budget.record(
                ctx.session,
                pass_row.merchant_id,
                pass_row.id,
                res.object_id,
                budget.QUOTA_EXCEEDED,
                None,
                moment,
            )
            _run(lambda: write(False))
            return
        budget.record(
            ctx.session, pass_row.merchant_id, pass_row.id, res.object_id, "update", None, moment
        )
        return
    _run(lambda: write(False))


def _relink_cards(
    ctx: JobContext, client: GoogleWalletClient, coupon_pass: Pass, offer_object: str
) -> None:
    """The coupon may have been used up, voided or ended (or come back): each of the
    member's cards whose links on Google disagree is queued a write, which sets them
    (links.py). Read first, so that the many syncs of a coupon that changed nothing of
    the sort (every purchase bumps all the member's passes) cost a GET, not a PATCH."""
    assert coupon_pass.member_id is not None
    live = any(
        p.id == coupon_pass.id
        for p in live_coupon_passes(ctx.session, coupon_pass.member_id, now())
    )
    for card in loyalty_cards(ctx.session, coupon_pass.member_id):
        assert card.google_object_id is not None
        object_id = card.google_object_id
        current = _run(lambda o=object_id: _get_or_none(client, "loyaltyObject", o))  # type: ignore[misc]
        if current is None:
            continue  # not on Google yet: its first write links what is live then
        if (offer_object in (current.get("linkedOfferIds") or [])) != live:
            queue_google_sync(ctx.session, ctx.settings, Pass.id == card.id)


def _insert_linked_offers(ctx: JobContext, client: GoogleWalletClient, member_id: int) -> None:
    """Put the member's live coupons that Google does not hold yet on Google, so that the
    card's write can link them (linking an object that does not exist fails the write).

    Idempotent: ids are deterministic and an insert of an existing object patches it. A
    coupon Google refuses is left unlinked (logged) rather than holding up the card.
    """
    for coupon_pass in live_coupon_passes(ctx.session, member_id, now()):
        if coupon_pass.google_object_id:
            continue
        try:
            res = build_pass_resources(
                ctx.session,
                ctx.settings,
                coupon_pass,
                pass_variables(ctx.session, coupon_pass, ctx.settings),
            )
            _run(lambda r=res: client.ensure_class(r.class_resource, r.class_body))  # type: ignore[misc]
            _run(lambda r=res: client.insert_or_patch(r.object_resource, r.object_body))  # type: ignore[misc]
        except (ValueError, PermanentFailure) as exc:
            log.warning("google: coupon pass %s not linked: %s", coupon_pass.id, exc)
            continue
        coupon_pass.google_object_id = res.object_id


@handler("google.message")
def add_message(ctx: JobContext, job: Job) -> None:
    pass_row = _load(ctx, job)
    if pass_row is None:
        return
    payload = job.payload
    message_id = str(payload["message_id"])
    object_id = pass_row.google_object_id
    assert object_id is not None
    resource = "offerObject" if pass_row.coupon_id is not None else "loyaltyObject"
    client = client_for(ctx)
    current = _run(lambda: _get_or_none(client, resource, object_id))
    if current is None:
        # Not on Google yet (a full-object link never saved): no card to show it on.
        log.info("google message %s: object %s not found; skipped", message_id, object_id)
        return
    messages = [_clean(m) for m in current.get("messages") or []]
    if any(m.get("id") == message_id for m in messages):
        return  # an earlier attempt got through: addMessage is not idempotent
    if len(messages) >= MAX_MESSAGES:
        # Google keeps at most 10; PATCH replaces the array whole, so send the kept ones.
        kept = messages[len(messages) - (MAX_MESSAGES - 1) :]
        _run(lambda: client.patch(resource, object_id, {"messages": kept}))  # type: ignore[arg-type]
    message: dict[str, Any] = {"id": message_id, "messageType": "TEXT"}
    if payload.get("header"):
        message["header"] = str(payload["header"])
    if payload.get("body"):
        message["body"] = str(payload["body"])
    moment = now()
    if payload.get("notify") and budget.may_notify(ctx.session, object_id, moment):
        loud = {**message, "messageType": "TEXT_AND_NOTIFY"}
        try:
            _run(
                lambda: client.add_message(resource, object_id, loud),  # type: ignore[arg-type]
                quota_passthrough=True,
            )
        except GoogleQuotaExceeded:
            log.info("google %s: notification quota used up; message sent silently", object_id)
            budget.record(
                ctx.session,
                pass_row.merchant_id,
                pass_row.id,
                object_id,
                budget.QUOTA_EXCEEDED,
                message_id,
                moment,
            )
        else:
            budget.record(
                ctx.session,
                pass_row.merchant_id,
                pass_row.id,
                object_id,
                "message",
                message_id,
                moment,
            )
            return
    _run(lambda: client.add_message(resource, object_id, message))  # type: ignore[arg-type]


def _get_or_none(client: GoogleWalletClient, resource: str, object_id: str) -> dict | None:
    try:
        return client.get(resource, object_id)  # type: ignore[arg-type]
    except GoogleNotFound:
        return None


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    # "kind" is deprecated output Google may echo back; never send it.
    return {k: v for k, v in message.items() if k != "kind"}
