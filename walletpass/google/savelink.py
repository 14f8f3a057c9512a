"""Save links ("Add to Google Wallet"): a signed save JWT in a https://pay.google.com URL.

We pre-insert the class and object over REST and sign a *skinny* JWT that names them by id
only (specs/google-wallet.md §1): the link stays far under the 1,800-character limit, and
the server, not a stale JWT, holds the pass content. If Google's REST API is unreachable we
fall back to embedding class and object in the JWT, when that still fits.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from google.auth import crypt
from google.auth import jwt as google_jwt

from walletpass.cards.variables import pass_variables
from walletpass.db import utcnow
from walletpass.google.client import GoogleQuotaExceeded, GoogleTransient, GoogleWalletClient
from walletpass.google.links import live_coupon_passes, queue_card_sync
from walletpass.google.objects import PAYLOAD_KEYS, build_pass_resources
from walletpass.passes.changes import queue_google_sync
from walletpass.passes.models import Pass

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from walletpass.config import Settings

log = logging.getLogger(__name__)

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"
# Google's "maximum safe length" of the JWT in a link; longer breaks some browsers and
# mail clients (§1, §7.3). We hold the whole link to it, which is stricter.
MAX_LINK_LENGTH = 1800


class SaveLinkError(RuntimeError):
    """No usable save link: Google unreachable and the full-object JWT too long."""


@functools.lru_cache(maxsize=8)
def _signer(service_account_file: str) -> tuple[crypt.RSASigner, str]:
    """Parse the key once per process: RSA key loading is the slow part of signing."""
    with open(service_account_file, encoding="utf-8") as fh:
        email = json.load(fh)["client_email"]
    return crypt.RSASigner.from_service_account_file(service_account_file), email


def clear_signer_cache() -> None:
    _signer.cache_clear()


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign_link(settings: Settings, payload: dict[str, Any], *, now: float | None = None) -> str:
    """Sign ``payload`` (a walletobjects ``Resources``) into a save URL; no length check."""
    if not settings.google_service_account_file:
        raise SaveLinkError("WALLETPASS_GOOGLE_SERVICE_ACCOUNT_FILE is not set")
    signer, email = _signer(settings.google_service_account_file)
    claims = {
        "iss": email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now if now is not None else time.time()),
        # The web button refuses to render for origins not listed here.
        "origins": [origin(settings.public_url)],
        "payload": payload,
    }
    token = google_jwt.encode(signer, claims).decode("ascii")
    return SAVE_URL_PREFIX + token


def save_url(
    settings: Settings,
    client: GoogleWalletClient,
    *,
    class_resource: str,
    class_body: dict[str, Any],
    object_resource: str,
    object_body: dict[str, Any],
) -> str:
    """A save link for ``object_body``; class and object are upserted over REST first.

    :raise GooglePermanent: Google refused the class or object (bad payload, permissions).
    :raise SaveLinkError: REST unreachable and the full-object link over 1,800 characters.
    """
    try:
        client.ensure_class(class_resource, class_body)  # type: ignore[arg-type]
        client.insert_or_patch(object_resource, object_body)  # type: ignore[arg-type]
    except (GoogleTransient, GoogleQuotaExceeded) as exc:
        # A class Google already accepted need not ride along: that keeps the link short.
        embed_class = not client.class_confirmed(class_body["id"])
        return _full_object_link(
            settings,
            exc,
            class_resource,
            class_body if embed_class else None,
            object_resource,
            object_body,
        )
    # Skinny form as in Google's "existing objects" sample: id and classId only.
    skinny = {"id": object_body["id"], "classId": object_body["classId"]}
    link = sign_link(settings, {PAYLOAD_KEYS[object_resource]: [skinny]})
    if len(link) > MAX_LINK_LENGTH:  # only an absurdly long id or key could do this
        raise SaveLinkError(f"skinny save link is {len(link)} characters (> {MAX_LINK_LENGTH})")
    return link


def _full_object_link(
    settings: Settings,
    cause: Exception,
    class_resource: str,
    class_body: dict[str, Any] | None,
    object_resource: str,
    object_body: dict[str, Any],
) -> str:
    payload: dict[str, Any] = {PAYLOAD_KEYS[object_resource]: [object_body]}
    if class_body is not None:
        payload[PAYLOAD_KEYS[class_resource]] = [class_body]
    link = sign_link(settings, payload)
    if len(link) > MAX_LINK_LENGTH:
        raise SaveLinkError(
            f"Google Wallet API unreachable ({cause}) and the full-object save link would be "
            f"{len(link)} characters (> {MAX_LINK_LENGTH}); try again later"
        ) from cause
    log.warning("google REST unreachable (%s); issued a full-object save link", cause)
    return link


def save_url_for_pass(
    session: Session, settings: Settings, client: GoogleWalletClient, pass_row: Pass
) -> str:
    """The save link for a pass (GET /p/<serial>/google); records its Google object id.

    Runs in the caller's transaction: ``pass_row.google_object_id`` is set before the REST
    calls so that a commit after success makes later changes enqueue ``google.sync``.
    """
    resources = build_pass_resources(
        session, settings, pass_row, pass_variables(session, pass_row, settings)
    )
    if pass_row.google_object_id != resources.object_id:
        pass_row.google_object_id = resources.object_id
    if pass_row.member_id is not None and pass_row.coupon_id is None:
        # The card links only the member's coupons Google already holds; a sync after
        # this commit inserts the others and links them (walletpass.google.links).
        live = live_coupon_passes(session, pass_row.member_id, utcnow())
        if any(not p.google_object_id for p in live):
            queue_google_sync(session, settings, Pass.id == pass_row.id)
    elif pass_row.member_id is not None and pass_row.google_object_id is not None:
        # A member's coupon saved from its own link: their card links it too.
        queue_card_sync(session, settings, pass_row.member_id)
    return save_url(
        settings,
        client,
        class_resource=resources.class_resource,
        class_body=resources.class_body,
        object_resource=resources.object_resource,
        object_body=resources.object_body,
    )
