"""Outbound webhooks: one delivery per subscribed endpoint, sent by the outbox worker.

The domain emits an event in its own transaction (``walletpass.events.emit``: one
``event.publish`` job), so an event is sent if and only if its change committed. This
module handles that job: :func:`publish` writes a ``WebhookDelivery`` per subscribed
active endpoint and a ``webhook.deliver`` job for each, once per event and endpoint
however often it runs. The deliver job POSTs the JSON signed with the endpoint's
secret; 2xx is delivered, anything else is retried with exponential backoff for about
three days, then the delivery is dead-lettered with its attempts, last status code and
last error. ``redeliver`` queues it again by hand.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, bindparam, select, text, update
from sqlalchemy.orm import Session

from walletpass import db, errors
from walletpass.config import Settings
from walletpass.crm import signing
from walletpass.crm.models import WebhookDelivery, WebhookEndpoint
from walletpass.db import JsonType, UTCDateTime, utcnow
from walletpass.egress import transport as egress_transport
from walletpass.events import EVENT_TYPES, PUBLISH_KIND, receiver
from walletpass.jobs.backoff import backoff
from walletpass.jobs.models import Job
from walletpass.jobs.queue import enqueue, enqueue_many
from walletpass.jobs.registry import (
    JobContext,
    PermanentFailure,
    RetryLater,
    batch_handler,
    handler,
)
from walletpass.security import SealError, random_token, seal, unseal

log = logging.getLogger(__name__)

JOB_KIND = "webhook.deliver"
# 15 attempts with delays of 1, 2, 4 ... 512 minutes, then 12 hours: the last attempt
# comes about 2.7 days after the first, so a receiver down over a weekend still gets it.
MAX_ATTEMPTS = 15
BACKOFF_FIRST_S = 60.0
BACKOFF_CAP_S = 12 * 3600.0
# Receivers should answer fast and do their work later; a slow one must not hold a worker.
TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
USER_AGENT = "walletpass-webhooks/1"
WILDCARD = "*"

STATUS_PENDING = "pending"
STATUS_DELIVERED = "delivered"
STATUS_DEAD = "dead"

_client_lock = threading.Lock()
_SERVICE_KEY = "webhook_http"


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): 80-100 % of the
    step, so the total schedule never exceeds what docs/webhooks.md promises."""
    return backoff(attempt, first_s=BACKOFF_FIRST_S, cap_s=BACKOFF_CAP_S, min_share=0.8, rng=rng)


def new_secret() -> str:
    return "whsec_" + random_token(32)


# --- endpoints ---------------------------------------------------------------------------


def check_url(url: str, settings: Settings, *, field: str = "url") -> str:
    """``url`` as an endpoint's URL, stripped.

    :raise errors.ValidationFailed: not an absolute http(s) URL, or its host is an address
        deliveries may not go to (the same check runs again on every connection).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ValidationFailed(
            f"{url!r} is not an http(s) URL",
            errors=[{"field": field, "message": "must be an absolute http(s) URL"}],
        )
    refusal = settings.webhook_egress.refusal(url.strip())
    if refusal is not None:
        raise errors.ValidationFailed(refusal, errors=[{"field": field, "message": refusal}])
    return url.strip()


def _check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - {*EVENT_TYPES, WILDCARD})
    if unknown or not events:
        raise errors.ValidationFailed(
            f"unknown event types {unknown}; choose from {', '.join(EVENT_TYPES)} or '*'"
            if unknown
            else "subscribe to at least one event type (or '*')",
            errors=[{"field": "events", "message": "unknown or missing event types"}],
        )
    return sorted(set(events))


def create_endpoint(
    session: Session,
    settings: Settings,
    *,
    merchant_id: int,
    url: str,
    events: list[str],
    active: bool = True,
    url_field: str = "url",
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its signing secret (shown once, stored sealed).

    :param url_field: how an error about the URL names it (the API's is ``body.url``).
    :raise errors.ValidationFailed: a URL that is not http(s) or not allowed (see
        :func:`check_url`), or unknown event types.
    """
    secret = new_secret()
    endpoint = WebhookEndpoint(
        merchant_id=merchant_id,
        url=check_url(url, settings, field=url_field),
        events=_check_events(events),
        secret_sealed=seal(settings.secret_key, secret.encode()),
        active=active,
    )
    session.add(endpoint)
    session.flush()
    session.info.pop(_ENDPOINTS_CACHE, None)  # this transaction may emit events next
    return endpoint, secret


def rotate_endpoint_secret(session: Session, settings: Settings, endpoint: WebhookEndpoint) -> str:
    """A new secret for ``endpoint``; deliveries from now on are signed with it."""
    secret = new_secret()
    endpoint.secret_sealed = seal(settings.secret_key, secret.encode())
    session.flush()
    return secret


def _subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    events = endpoint.events or []
    return WILDCARD in events or event_type in events


# --- publishing ----------------------------------------------------------------------------

_ENDPOINTS_CACHE = "walletpass_webhook_endpoints"


def _merchant_endpoints(session: Session, merchant_id: int) -> list[WebhookEndpoint]:
    """The merchant's endpoints, read once per transaction: a till scan emits several
    events, and each would otherwise query the same rows again."""
    cache = session.info.setdefault(_ENDPOINTS_CACHE, {})
    if merchant_id not in cache:
        cache[merchant_id] = list(
            session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id)
            )
        )
    return cache[merchant_id]


def any_active_endpoint(merchant_id: Any) -> ColumnElement[bool]:
    """EXISTS(an active endpoint of ``merchant_id``), to put in a caller's own query: a till
    scan learns in its first round trip that there is nothing to deliver (the usual case)
    instead of asking again per event."""
    return (
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.active.is_(True))
        .exists()
    )


def note_no_active_endpoint(session: Session, merchant_id: int) -> None:
    """Record for this transaction what :func:`any_active_endpoint` answered False: events
    emitted in it then write nothing without asking the database."""
    session.info.setdefault(_ENDPOINTS_CACHE, {})[merchant_id] = []


@receiver
def wants(session: Session, merchant_id: int, event_type: str) -> bool:
    """Whether an active endpoint of the merchant subscribes to the type, as the emitting
    transaction sees it: without one the event is not queued at all."""
    return any(
        endpoint.active and _subscribed(endpoint, event_type)
        for endpoint in _merchant_endpoints(session, merchant_id)
    )


# Literal SQL for the same reason as the outbox's INSERT (walletpass/jobs/queue.py): one
# statement both dialects speak. A delivery already written for the event and endpoint (a
# publish job run again after a crash, or by a second worker whose lease overlapped) is
# left as it is and returns no id, so its send is not queued twice.
_INSERT_DELIVERY = text(
    "INSERT INTO webhook_deliveries (merchant_id, endpoint_id, event_id, event_type, payload, "
    "status, attempts, created_at) VALUES (:merchant_id, :endpoint_id, :event_id, "
    ":event_type, :payload, :status, 0, :created_at) "
    "ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id"
).bindparams(
    bindparam("payload", type_=JsonType),
    bindparam("created_at", type_=UTCDateTime()),
)


@batch_handler(PUBLISH_KIND)
def publish(ctx: JobContext, jobs: list[Job]) -> dict[int, Exception | None]:
    """Write a delivery, and queue its send, for every active endpoint of the merchant
    subscribed to each event; the jobs are one merchant's (the worker groups them so).

    Runs in the jobs' transaction: the deliveries are written exactly when the jobs are
    recorded done. The endpoints are those active when the event is published, moments
    after its change committed.
    """
    merchant_id = jobs[0].merchant_id
    endpoints = list(
        ctx.session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.active.is_(True)
            )
        )
    )
    now = utcnow()
    sends: list[tuple[dict[str, Any], str | None]] = []
    for job in jobs:
        envelope = job.payload
        for endpoint in endpoints:
            if not _subscribed(endpoint, envelope["type"]):
                continue
            delivery_id = ctx.session.scalar(
                _INSERT_DELIVERY,
                {
                    "merchant_id": merchant_id,
                    "endpoint_id": endpoint.id,
                    "event_id": envelope["id"],
                    "event_type": envelope["type"],
                    "payload": envelope,
                    "status": STATUS_PENDING,
                    "created_at": now,
                },
            )
            if delivery_id is not None:
                sends.append(_send(delivery_id))
    enqueue_many(ctx.session, JOB_KIND, sends, merchant_id=merchant_id, max_attempts=MAX_ATTEMPTS)
    return {job.id: None for job in jobs}


def _send(delivery_id: int) -> tuple[dict[str, Any], str | None]:
    # The dedupe key makes a redelivery of a delivery that is still queued a no-op.
    return {"delivery_id": delivery_id}, f"{JOB_KIND}:{delivery_id}"


def _enqueue(session: Session, delivery: WebhookDelivery) -> None:
    payload, dedupe_key = _send(delivery.id)
    enqueue(
        session,
        JOB_KIND,
        payload,
        merchant_id=delivery.merchant_id,
        dedupe_key=dedupe_key,
        max_attempts=MAX_ATTEMPTS,
    )


def redeliver(session: Session, delivery_id: int) -> WebhookDelivery:
    """Queue a delivery again (same event id and payload, a fresh signature and schedule).

    :raise errors.NotFound: no such delivery for this merchant.
    :raise errors.ActionNotAllowed: its endpoint is disabled.
    """
    delivery = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    ).one_or_none()
    if delivery is None:
        raise errors.NotFound(f"no webhook delivery {delivery_id}")
    endpoint = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id)
    ).one()
    if not endpoint.active:
        raise errors.ActionNotAllowed(f"endpoint {endpoint.id} is disabled; enable it first")
    delivery.status = STATUS_PENDING
    session.flush()
    _enqueue(session, delivery)
    return delivery


def list_deliveries(
    session: Session, endpoint_id: int, *, status: str | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    """An endpoint's delivery log, newest first."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


# --- sending -------------------------------------------------------------------------------


def _client(services: dict[str, Any], settings: Settings) -> httpx.Client:
    client = services.get(_SERVICE_KEY)
    if client is None:
        with _client_lock:
            client = services.get(_SERVICE_KEY)
            if client is None:
                # One pooled client per process: keep-alive to busy receivers. Redirects
                # are not followed: a signed POST must not be replayed somewhere else.
                # Connections go only where the egress policy allows (walletpass/egress.py).
                client = httpx.Client(
                    timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                    follow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                    transport=egress_transport(settings.webhook_egress),
                    trust_env=False,
                )
                services[_SERVICE_KEY] = client
    return client


@dataclass(frozen=True)
class _Prepared:
    url: str
    secret: str
    payload: dict[str, Any]
    event_id: str
    event_type: str


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None


def post(client: httpx.Client, url: str, secret: str, payload: dict[str, Any]) -> Attempt:
    """Send one signed payload; never raises for network or HTTP failures."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        signing.SIGNATURE_HEADER: signing.header_value(secret, body),
        signing.EVENT_ID_HEADER: str(payload["id"]),
        signing.EVENT_TYPE_HEADER: str(payload["type"]),
    }
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            if 200 <= response.status_code < 300:
                return Attempt(True, response.status_code, None)
            # A little of the answer helps whoever reads the log; a huge one is not read.
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                if len(snippet) >= 300:
                    break
            text = snippet[:300].decode("utf-8", "replace").strip()
            return Attempt(False, response.status_code, f"HTTP {response.status_code}: {text}")
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)


@handler(JOB_KIND)
def deliver(ctx: JobContext, job: Job) -> None:
    """Send one delivery.

    The row is read in a short transaction of its own and the job's transaction is only
    touched after the HTTP call, so no transaction (on SQLite: the database's write
    lock) is held while a receiver takes its time. A failed attempt is recorded in its
    own transaction because raising ``RetryLater`` rolls the job's transaction back.
    """
    delivery_id = int(job.payload.get("delivery_id", 0))
    side = db.make_sessionmaker(ctx.session.get_bind())
    prepared = _prepare(side, ctx.settings, job.merchant_id, delivery_id)
    if prepared is None:
        return
    attempt = post(
        _client(ctx.services, ctx.settings), prepared.url, prepared.secret, prepared.payload
    )
    now = utcnow()
    mine = WebhookDelivery.id == delivery_id
    if attempt.ok:
        ctx.session.execute(
            update(WebhookDelivery)
            .where(mine)
            .values(
                status=STATUS_DELIVERED,
                attempts=WebhookDelivery.attempts + 1,
                last_status_code=attempt.status_code,
                last_error=None,
                delivered_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return
    final = job.attempts >= job.max_attempts
    with db.transaction(side, job.merchant_id) as session:
        session.execute(
            update(WebhookDelivery)
            .where(mine)
            .values(
                status=STATUS_DEAD if final else STATUS_PENDING,
                attempts=WebhookDelivery.attempts + 1,
                last_status_code=attempt.status_code,
                last_error=attempt.error,
            )
            .execution_options(synchronize_session=False)
        )
    if final:
        log.warning(
            "webhook delivery %s (%s %s) dead after %d attempts: %s",
            delivery_id,
            prepared.event_type,
            prepared.event_id,
            job.attempts,
            attempt.error,
        )
        raise PermanentFailure(f"gave up after {job.attempts} attempts: {attempt.error}")
    delay = retry_delay(job.attempts)
    log.info(
        "webhook delivery %s attempt %d failed (%s); retry in %.0fs",
        delivery_id,
        job.attempts,
        attempt.error,
        delay,
    )
    raise RetryLater(attempt.error or "delivery failed", delay=delay)


def _prepare(
    side: Any, settings: Settings, merchant_id: int | None, delivery_id: int
) -> _Prepared | None:
    with db.transaction(side, merchant_id) as session:
        delivery = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        ).one_or_none()
        if delivery is None or delivery.status == STATUS_DELIVERED:
            return None  # deleted with its endpoint, or a duplicate job: nothing to send
        endpoint = session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id == delivery.endpoint_id)
        ).one_or_none()
        problem = None
        if endpoint is None or not endpoint.active:
            problem = "endpoint disabled"
        else:
            try:
                secret = unseal(settings.secret_key, endpoint.secret_sealed).decode()
            except SealError as exc:
                problem = f"cannot unseal the endpoint secret: {exc}"
        if problem is not None:
            delivery.status = STATUS_DEAD
            delivery.last_error = problem
            log.warning("webhook delivery %s not sent: %s", delivery_id, problem)
            return None
        assert endpoint is not None
        return _Prepared(
            endpoint.url, secret, dict(delivery.payload), delivery.event_id, delivery.event_type
        )
