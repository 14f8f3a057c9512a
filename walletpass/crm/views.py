"""``POST /webhooks/crm/<source>``: the HTTP edge of inbound CRM webhooks.

Thin on purpose: read the raw bytes (the signature covers them exactly), hand them to
``walletpass.crm.inbound.receive`` and render its outcome or its problem. No CSRF and no
session: the HMAC signature is the authentication.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from walletpass import errors
from walletpass.crm import inbound, signing
from walletpass.web.context import current_runtime
from walletpass.web.problems import problem_response

log = logging.getLogger(__name__)

bp = Blueprint("crm", __name__)


@bp.post("/webhooks/crm/<source>")
def receive(source: str) -> Response:
    runtime = current_runtime()
    length = request.content_length
    if length is not None and length > inbound.MAX_BODY_BYTES:
        # Refuse before reading: the body is not authenticated yet.
        return problem_response(inbound.PayloadTooLarge(f"at most {inbound.MAX_BODY_BYTES} bytes"))
    body = request.get_data(cache=False)
    try:
        outcome = inbound.receive(
            runtime, source, body, request.headers.get(signing.SIGNATURE_HEADER)
        )
    except errors.WalletpassError as exc:
        if exc.status >= 500:
            log.error("crm webhook %s failed: %s", source, exc.detail)
        else:
            log.info("crm webhook %s refused (%s): %s", source, exc.code, exc.detail)
        return problem_response(exc)
    return jsonify(outcome.as_json())
