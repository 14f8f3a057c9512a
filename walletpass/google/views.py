"""Google Wallet's save/delete callbacks: POST /google/callbacks.

Authenticate the raw body first (ECv2SigningOnly), then parse, deduplicate on the nonce
(Google retries and duplicates happen), record the install or removal, and answer 200
quickly. Callbacks are best effort on Google's side, so nothing else depends on them.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from walletpass.db import utcnow
from walletpass.google.callbacks import (
    CallbackError,
    KeysProvider,
    KeysUnavailable,
    verify_callback,
)
from walletpass.google.models import GoogleCallbackNonce
from walletpass.passes.models import Pass
from walletpass.passes.services import record_event
from walletpass.web.context import current_runtime

log = logging.getLogger(__name__)

bp = Blueprint("google", __name__)

_EVENT_KINDS = {"save": "installed", "del": "removed"}
_KEYS_EXTENSION = "walletpass.google_keys"


def _text(body: str, status: int) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


def _keys_provider(url: str) -> KeysProvider:
    # One provider per app, so the key cache outlives the request.
    provider = current_app.extensions.get(_KEYS_EXTENSION)
    if provider is None or provider.url != url:
        provider = current_app.extensions.setdefault(_KEYS_EXTENSION, KeysProvider(url))
    return provider


@bp.post("/google/callbacks")
def callbacks() -> Response:
    wp = current_runtime()
    settings = wp.settings
    if not settings.google_issuer_id:
        return _text("google wallet not configured", 404)
    body = request.get_data(as_text=True)
    try:
        message = verify_callback(
            body,
            issuer_id=settings.google_issuer_id,
            sender=settings.google_callback_sender,
            keys_provider=_keys_provider(settings.google_keys_url),
            now=utcnow(),
        )
    except CallbackError as exc:
        log.warning("google callback rejected: %s", exc)
        return _text(f"invalid callback: {exc}", 401)
    except KeysUnavailable as exc:
        log.error("google callback not verifiable now: %s", exc)
        return _text("signing keys unavailable", 503)

    nonce = str(message.get("nonce") or "")[:128]
    if not nonce:
        return _text("invalid callback: no nonce", 401)
    try:
        with wp.transaction() as session:
            outcome = _handle(session, message, nonce)
    except IntegrityError:
        # A concurrent delivery of the same callback committed the nonce first.
        outcome = "duplicate"
    return _text(outcome, 200)


def _handle(session: Any, message: dict[str, Any], nonce: str) -> str:
    seen = session.scalar(select(GoogleCallbackNonce.id).where(GoogleCallbackNonce.nonce == nonce))
    if seen is not None:
        return "duplicate"
    session.add(GoogleCallbackNonce(nonce=nonce, created_at=utcnow()))
    session.flush()
    kind = _EVENT_KINDS.get(str(message.get("eventType", "")).lower())
    object_id = message.get("objectId")
    if kind is None or not isinstance(object_id, str):
        return "ignored"
    # The request carries no merchant: look the pass up across tenants by its object id.
    pass_row = session.scalar(
        select(Pass).where(Pass.google_object_id == object_id).execution_options(all_merchants=True)
    )
    if pass_row is None:
        log.info("google callback for unknown object %s", object_id)
        return "unknown object"
    record_event(session, pass_row, "google", kind)
    return "ok"
