"""The ``apple.push`` job: tell devices over APNs that their passes changed.

Jobs are handled in batches (one HTTP/2 connection, many streams). Each job is one push
token of one pass type; the queue already merged a burst of changes into one job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from walletpass.apple.apns import ApnsClient, PushOutcome
from walletpass.apple.models import Device
from walletpass.apple.prebuild import sign_before_push
from walletpass.apple.problems import record_apns_errors
from walletpass.certs import merchant as merchant_certs
from walletpass.config import Settings
from walletpass.jobs.models import Job
from walletpass.jobs.registry import JobContext, PermanentFailure, RetryLater, batch_handler
from walletpass.passes.signing import CertificateError, SigningIdentity

log = logging.getLogger(__name__)

# After a 403 (certificate revoked or expired) nothing will succeed until an operator
# acts; waiting a quarter of an hour between tries avoids a retry storm against Apple.
CERTIFICATE_RETRY_S = 900.0


class ApnsClients:
    """One APNs client (one HTTP/2 connection) per signing certificate, made on first
    use and shared by that certificate's pushes; and which certificates APNs refused.

    APNs authenticates a connection by its client certificate and accepts on it only the
    topic (pass type) that certificate is for, so a merchant's own certificate needs a
    connection of its own. Kept in ``ctx.services["apns_clients"]`` for the worker's life
    (the runtime closes it); thread-safe, as the worker's threads share it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        # topic -> (certificate fingerprint, client): a topic's certificate replaced (a
        # renewal, a merchant's new import) closes the old connection.
        self._clients: dict[str, tuple[str, ApnsClient]] = {}
        # certificate fingerprint -> (when, APNs's reason) of its last 403.
        self.pauses: dict[str, tuple[float, str | None]] = {}

    def client(self, topic: str, identity: SigningIdentity) -> ApnsClient:
        with self._lock:
            found = self._clients.get(topic)
            if found is not None and found[0] == identity.fingerprint:
                return found[1]
            client = ApnsClient(
                base_url=self._settings.apns_url,
                cert=identity.cert.public_bytes(serialization.Encoding.PEM),
                key=identity.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
                ca_file=self._settings.apns_ca_file,
                concurrency=self._settings.apns_concurrency,
            )
            self._clients[topic] = (identity.fingerprint, client)
        if found is not None:
            found[1].close()
        return client

    def paused(self, fingerprint: str) -> tuple[float, str | None] | None:
        with self._lock:
            return self.pauses.get(fingerprint)

    def pause(self, fingerprint: str, reason: str | None, services: dict[str, object]) -> None:
        with self._lock:
            self.pauses[fingerprint] = (time.time(), reason)
            services["apns_certificate_error"] = max(self.pauses.values(), key=lambda p: p[0])

    def resume(self, fingerprint: str, services: dict[str, object]) -> None:
        with self._lock:
            if self.pauses.pop(fingerprint, None) is None:
                return
            if self.pauses:
                services["apns_certificate_error"] = max(self.pauses.values(), key=lambda p: p[0])
            else:
                services.pop("apns_certificate_error", None)

    def close(self) -> None:
        with self._lock:
            clients = [client for _, client in self._clients.values()]
            self._clients.clear()
        for client in clients:
            client.close()


def apns_clients(ctx: JobContext) -> ApnsClients:
    clients = ctx.services.get("apns_clients")
    if clients is None:
        with _SERVICES_LOCK:
            clients = ctx.services.get("apns_clients")
            if clients is None:
                clients = ctx.services["apns_clients"] = ApnsClients(ctx.settings)
    assert isinstance(clients, ApnsClients)
    return clients


_SERVICES_LOCK = threading.Lock()


# Retried by time (settings.job_retry_hours), not by count: twelve attempts of the
# doubling backoff are spent within about an hour of an APNs outage.
@batch_handler("apple.push", size=1000, retry_by_time=True)
def push_batch(ctx: JobContext, jobs: list[Job]) -> dict[int, Exception | None]:
    outcomes: dict[int, Exception | None] = {}
    by_topic: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_topic[job.payload["pass_type_id"]].append(job)
    clients = apns_clients(ctx)
    identities = _identities(ctx, list(by_topic))
    started = time.time()
    # APNs's refusals, per merchant and topic, recorded once a batch for the admin's
    # "Wallet problems" page: a row per kind of refusal, however many pushes it covers.
    refusals: Refusals = defaultdict(list)
    for topic, all_jobs in by_topic.items():
        # A topic's pushes go out with the certificate of that pass type, on its own
        # connection; one refused certificate pauses only its own pushes.
        identity = identities[topic]
        if isinstance(identity, CertificateError):
            log.error("no certificate for APNs topic %s: %s", topic, identity)
            retry = RetryLater(f"no certificate for {topic}: {identity}", CERTIFICATE_RETRY_S)
            outcomes.update({job.id: retry for job in all_jobs})
            continue
        paused = clients.paused(identity.fingerprint)
        if paused is not None and time.time() - paused[0] < CERTIFICATE_RETRY_S:
            # APNs refused this certificate moments ago: don't send these only to be
            # refused again; try once more when the pause is over.
            wait = CERTIFICATE_RETRY_S - (time.time() - paused[0])
            retry = RetryLater(f"pushes paused: APNs 403 {paused[1]}", wait)
            outcomes.update({job.id: retry for job in all_jobs})
            continue
        client = clients.client(topic, identity)
        for start in range(0, len(all_jobs), SIGNED_CHUNK):
            topic_jobs = all_jobs[start : start + SIGNED_CHUNK]
            refused = clients.paused(identity.fingerprint)
            if refused is not None and refused[0] >= started:
                # Refused in an earlier chunk: the rest waits for the pause, unsent.
                retry = RetryLater(f"pushes paused: APNs 403 {refused[1]}", CERTIFICATE_RETRY_S)
                outcomes.update({job.id: retry for job in topic_jobs})
                continue
            outcomes.update(
                _sign_and_push(
                    ctx, clients, identity.fingerprint, client, topic, topic_jobs, refusals
                )
            )
    for (merchant_id, topic), answers in refusals.items():
        record_apns_errors(ctx.session, merchant_id, topic, answers)
    return outcomes


def _identities(
    ctx: JobContext, topics: list[str]
) -> dict[str, SigningIdentity | CertificateError]:
    """The certificate of each topic (pass type), or why there is none."""
    if ctx.runtime is None:
        return {topic: _identity(ctx.session, ctx.settings, topic) for topic in topics}
    # Read in a transaction of its own: the job's own session has not begun yet, and on
    # SQLite beginning it takes the one write lock that sign_before_push's write needs.
    with ctx.runtime.transaction(readonly=True) as session:
        return {topic: _identity(session, ctx.settings, topic) for topic in topics}


def _identity(
    session: Session, settings: Settings, topic: str
) -> SigningIdentity | CertificateError:
    try:
        return merchant_certs.signer_for(session, settings, topic).identity(session, settings)
    except CertificateError as exc:
        return exc


# The pushes of a batch go out as their passes are signed, this many at a time: each
# chunk's phones fetch at once, a burst the web service must serve before the next. On 2
# cores, bench_herd (2,000 phones, SQLite): signed whole first, a batch of 1,000 woke
# 1,000 phones at once after seconds of signing, p99 131 ms a phone; chunks of 50, 110 ms;
# of 20, 53 ms with every phone updated in 14.2 s; of 10, 46 ms but 19.9 s (more rounds).
SIGNED_CHUNK = 20


Refusals = dict[tuple[int | None, str], list[tuple[int | None, str | None]]]


def _sign_and_push(
    ctx: JobContext,
    clients: ApnsClients,
    fingerprint: str,
    client: ApnsClient,
    topic: str,
    topic_jobs: list[Job],
    refusals: Refusals,
) -> dict[int, Exception | None]:
    outcomes: dict[int, Exception | None] = {}
    tokens = [job.payload["token"] for job in topic_jobs]
    # The phones fetch as soon as they are woken: have their passes signed by then.
    sign_before_push(ctx, topic_jobs[0].merchant_id, topic, tokens)
    results = client.send_many(topic, tokens)
    for job, result in zip(topic_jobs, results, strict=True):
        if result.outcome != PushOutcome.OK:
            refusals[job.merchant_id, topic].append((result.status, result.reason))
        if result.outcome == PushOutcome.OK:
            outcomes[job.id] = None
            clients.resume(fingerprint, ctx.services)
        elif result.outcome in (PushOutcome.UNREGISTERED, PushOutcome.BAD_TOKEN):
            forget_token(ctx, topic, result.token, result.timestamp_ms)
            outcomes[job.id] = None
        elif result.outcome == PushOutcome.CERTIFICATE:
            clients.pause(fingerprint, result.reason, ctx.services)
            log.error(
                "APNs refused the certificate for %s (%s): its pushes paused", topic, result.reason
            )
            outcomes[job.id] = RetryLater(f"APNs 403 {result.reason}", CERTIFICATE_RETRY_S)
        elif result.outcome == PushOutcome.RETRY:
            outcomes[job.id] = RetryLater(
                f"APNs {result.status} {result.reason}", result.retry_after
            )
        else:
            outcomes[job.id] = PermanentFailure(f"APNs {result.status} {result.reason}")
    return outcomes


def forget_token(ctx: JobContext, topic: str, token: str, timestamp_ms: int | None) -> None:
    """Drop the registrations behind a dead push token.

    APNs's 410 carries the moment the token stopped being valid; a device that
    registered again after that moment has a live registration we must keep.
    """
    query = select(Device.id).where(Device.pass_type_id == topic, Device.push_token == token)
    if timestamp_ms is not None:
        cutoff = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
        query = query.where(Device.updated_at <= cutoff)
    device_ids = list(ctx.session.scalars(query))
    if device_ids:
        # Registrations go with their device (ON DELETE CASCADE).
        ctx.session.execute(
            delete(Device)
            .where(Device.id.in_(device_ids))
            .execution_options(synchronize_session=False)
        )
