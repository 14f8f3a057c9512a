"""APNs client for pass-update pushes: HTTP/2 over TLS with the Pass Type ID certificate.

Why a hand-written client on ``h2`` instead of ``httpx.AsyncClient(http2=True)``
--------------------------------------------------------------------------------
All three were measured against the same HTTP/2+TLS stand-in on 127.0.0.1 (stand-in
in its own process, 2-core machine; ``benchmarks/bench_push.py --with-httpx``,
10,000 pushes): httpx 0.28 ~450 pushes/s (~1,950 us client CPU per push),
aioapns 4.0 ~1,000/s (~680 us), this client ~3,900/s (~150 us). httpx runs every
request as its own task through httpcore's pool and a lock around the shared
h2 state, one ``write`` + ``drain`` per request; aioapns has one future per push
and uses h2's default HPACK (Huffman, dynamic table). What this client does:

* one ``H2Connection`` per TCP/TLS connection, driven by an ``asyncio.Protocol``
  (no stream reader/writer layer);
* no task or future per push: ``send_many`` queues the whole batch and a pump
  opens as many streams as the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` and
  our own limit allow, refilling from the reader callback every few dozen
  responses so client and server work in parallel instead of taking turns;
  frames are written in slices of that size, not one ``write`` per frame;
* h2's header validation/normalisation is off (we build the headers), its
  O(open streams) stream counting is replaced by our own count
  (:class:`_H2Connection`), and HPACK goes through :class:`StatelessHpackEncoder`
  (no Huffman, no dynamic table), which profiling showed to be the largest
  single cost per push on both ends.

Connections are long-lived and shared by all calls and threads (Apple treats
rapid connect/disconnect as abuse); a dead one is replaced on the next call, at
most a few connection attempts per call, never in a loop.

The worker is synchronous, so the client owns an asyncio loop in a background
thread (created on first use, stopped by :meth:`ApnsClient.close`) and
``send_many`` hands the batch over with one thread hop; batches of 500 reach
the same throughput as one huge batch.

Timeouts: ``timeout`` bounds connecting. A call gives up (the rest reported as
RETRY, status None) when no response at all arrived for ``timeout`` seconds, or
when all its pushes are sent and none was answered in that time (a stalled
stream). A connection that sent nothing back since those requests went out is
dropped as dead. Pushes in flight on a connection that breaks are re-sent once
on a new one (a duplicate update push is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import H2Error, ProtocolError
from hpack.struct import Header  # h2 depends on hpack
from hpack.table import HeaderTable

log = logging.getLogger(__name__)

PAYLOAD = b"{}"
_PAYLOAD_LEN = len(PAYLOAD)
# Anything outside this can't go into the request path unescaped; APNs tokens are hex.
_TOKEN_RE = re.compile(r"^[0-9A-Za-z]{1,512}$")
# Connection attempts one send_many may make (initial top-up + reconnects after loss).
_MAX_CONNECT_ROUNDS = 3
# Freed streams are refilled after this many responses (see _Conn.data_received).
_REFILL_EVERY = 64
# Stop opening streams on a connection well before h2 runs out of stream ids.
_MAX_STREAM_ID = 2**31 - 10_000


class PushOutcome(StrEnum):
    OK = "ok"
    UNREGISTERED = "unregistered"
    BAD_TOKEN = "bad_token"  # noqa: S105 - an outcome name, not a credential
    CERTIFICATE = "certificate"
    RETRY = "retry"
    ERROR = "error"


@dataclass(frozen=True)
class PushResult:
    token: str
    status: int | None
    outcome: PushOutcome
    reason: str | None
    timestamp_ms: int | None
    apns_id: str | None
    retry_after: float | None


_BAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})


def classify(status: int | None, reason: str | None) -> PushOutcome:
    """Map an APNs status/reason to what the caller should do with the token."""
    if status is None:  # connection error, TLS failure, timeout: nothing was decided
        return PushOutcome.RETRY
    if status == 200:
        return PushOutcome.OK
    if status == 410:
        return PushOutcome.UNREGISTERED
    if status == 400 and reason in _BAD_TOKEN_REASONS:
        return PushOutcome.BAD_TOKEN
    if status == 403:
        return PushOutcome.CERTIFICATE
    if status == 429 or 500 <= status <= 599:
        return PushOutcome.RETRY
    return PushOutcome.ERROR


def _parse_retry_after(value: bytes | None) -> float | None:
    if not value:
        return None
    text = value.decode("latin-1").strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- credentials -----------------------------------------------------------------------


def _is_pem_text(value: str | Path | bytes) -> bool:
    return isinstance(value, bytes) or (isinstance(value, str) and "-----BEGIN" in value)


def _load_client_cert(
    ctx: ssl.SSLContext, cert: str | Path | bytes, key: str | Path | bytes
) -> None:
    """``load_cert_chain`` only reads files; in-memory PEM goes through a private temp dir.

    The unsealed key may only exist in memory, so it is written to a 0700 dir
    (tmpfs /dev/shm when available, so it never reaches a disk) as a 0600 file
    and removed right after OpenSSL has read it.
    """
    if not _is_pem_text(cert) and not _is_pem_text(key):
        ctx.load_cert_chain(str(cert), str(key))
        return
    # mkdtemp makes a fresh 0700 dir with an unpredictable name, so a shared
    # parent is safe.
    shm = "/dev/shm"  # noqa: S108
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="walletpass-apns-", dir=base)
    try:

        def materialise(value: str | Path | bytes, name: str) -> str:
            if not _is_pem_text(value):
                return str(value)
            data = value if isinstance(value, bytes) else str(value).encode()
            path = os.path.join(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return path

        ctx.load_cert_chain(materialise(cert, "cert.pem"), materialise(key, "key.pem"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _client_ssl_context(
    cert: str | Path | bytes, key: str | Path | bytes, ca_file: str | None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        ctx.load_verify_locations(cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    _load_client_cert(ctx, cert, key)
    return ctx


# -- HPACK ------------------------------------------------------------------------------


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_str(data: bytes) -> bytes:
    return _hpack_int(len(data), 7, 0) + data  # H=0: raw octets, no Huffman


_STATIC_FULL: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAME: dict[bytes, int] = {}
for _i, (_n, _v) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_FULL.setdefault((_n, _v), _i)
    _STATIC_NAME.setdefault(_n, _i)


class StatelessHpackEncoder:
    """Drop-in for h2's ``hpack.Encoder`` that never uses the dynamic table or Huffman.

    Why: profiling showed hpack's pure-Python Huffman coding and dynamic-table
    bookkeeping to be the largest single cost per push on *both* ends (the
    receiver's Huffman decoding of every unique ``:path``/``apns-id`` was worse
    than our encoding). Every push has the same headers except ``:path``, so:
    static-table matches are sent indexed, everything else as "literal without
    indexing" with raw octets, and the encoded form of each repeated header is
    cached. With no dynamic-table entries there is no compression state to keep
    in sync, so any HPACK decoder (Apple's included) reads it. Costs a few
    bytes per request, which is irrelevant next to the CPU saved.
    """

    _VOLATILE = frozenset({b":path", b"apns-id"})  # unique per message: not worth caching

    def __init__(self) -> None:
        # h2 assigns this when the peer changes SETTINGS_HEADER_TABLE_SIZE; with
        # an empty dynamic table any size is fine, so it is only recorded.
        self.header_table_size = 4096
        self._cache: dict[tuple[bytes, bytes], bytes] = {}

    def _field(self, name: bytes, value: bytes) -> bytes:
        idx = _STATIC_FULL.get((name, value))
        if idx is not None:
            return _hpack_int(idx, 7, 0x80)
        idx = _STATIC_NAME.get(name)
        if idx is not None:
            return _hpack_int(idx, 4, 0x00) + _hpack_str(value)
        return b"\x00" + _hpack_str(name) + _hpack_str(value)

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        cache = self._cache
        parts = []
        for header in headers:
            name, value = header[0], header[1]
            if isinstance(name, str):
                name = name.encode()
            if isinstance(value, str):
                value = value.encode()
            if name in self._VOLATILE:
                parts.append(self._field(name, value))
                continue
            enc = cache.get((name, value))
            if enc is None:
                enc = self._field(name, value)
                if len(cache) < 1024:
                    cache[(name, value)] = enc
            parts.append(enc)
        return b"".join(parts)


class _H2Connection(H2Connection):
    """h2's connection with an O(1) open-stream count for new streams.

    h2 counts open outbound streams by scanning *every* stream each time one is
    opened; with hundreds in flight that scan was the biggest cost per push
    (over a third of the client's CPU at 500 concurrent streams). We already
    track our in-flight streams, and we never open more than the server's
    MAX_CONCURRENT_STREAMS, so the scan only needs to run now and then for the
    side effect h2 relies on: pruning closed streams from ``self.streams``.
    """

    _SWEEP_EVERY = 256

    def __init__(self, config: H2Configuration, in_flight: dict[int, Any]) -> None:
        super().__init__(config)
        self._in_flight = in_flight
        self._until_sweep = self._SWEEP_EVERY

    @property
    def open_outbound_streams(self) -> int:
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._until_sweep = self._SWEEP_EVERY
            return super().open_outbound_streams
        return len(self._in_flight)


# -- engine (runs on the client's loop thread) -------------------------------------


class _Req:
    __slots__ = (
        "apns_id",
        "attempt",
        "batch",
        "body",
        "idx",
        "retry_after",
        "sent_at",
        "status",
        "token",
    )

    def __init__(self, batch: _Batch, idx: int, token: bytes) -> None:
        self.batch = batch
        self.idx = idx
        self.token = token
        self.attempt = 0
        self.sent_at = 0.0
        self.status: int | None = None
        self.apns_id: bytes | None = None
        self.retry_after: bytes | None = None
        self.body: bytes = b""

    def read_headers(self, headers: list[Header]) -> None:
        for k, v in headers:
            if k == b":status":
                self.status = int(v)
            elif k == b"apns-id":
                self.apns_id = v
            elif k == b"retry-after":
                self.retry_after = v


class _Batch:
    """One send_many call: distinct tokens, their results, and what is left to send."""

    __slots__ = (
        "done",
        "headers_tail",
        "next",
        "progress",
        "queued",
        "remaining",
        "results",
        "retry",
        "tokens",
        "topic",
        "wake",
    )

    def __init__(self, topic: str, tokens: list[str]) -> None:
        self.topic = topic
        self.tokens = tokens
        self.results: list[PushResult | None] = [None] * len(tokens)
        self.next = 0
        self.retry: deque[_Req] = deque()
        self.remaining = len(tokens)
        self.progress = 0  # responses (or failures) so far; the idle timeout watches it
        self.queued = False
        self.done = False
        self.wake = asyncio.Event()
        self.headers_tail = [
            (b"apns-topic", topic.encode()),
            (b"apns-push-type", b"background"),
            (b"apns-priority", b"5"),
            # No content-length: optional in HTTP/2 (the DATA frame carries the
            # length), aioapns omits it too, and it is one more header to decode.
        ]

    def take(self) -> _Req | None:
        if self.retry:
            return self.retry.popleft()
        i = self.next
        if i >= len(self.tokens):
            return None
        self.next = i + 1
        return _Req(self, i, self.tokens[i].encode("ascii"))

    def put_back(self, req: _Req) -> None:
        self.retry.appendleft(req)

    @property
    def has_unsent(self) -> bool:
        return bool(self.retry) or self.next < len(self.tokens)


class _Conn(asyncio.Protocol):
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.streams: dict[int, _Req] = {}
        self.h2 = _H2Connection(
            H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
            ),
            self.streams,
        )
        # h2 annotates the attribute as hpack's Encoder class, though it only calls encode()
        # and sets header_table_size, which this drop-in has.
        self.h2.encoder = StatelessHpackEncoder()  # type: ignore[assignment]
        self.transport: asyncio.Transport | None = None
        loop = engine.loop
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.usable = False  # ready, not draining, not lost
        self.last_rx = loop.time()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        # Responses are small, but a larger window keeps error bodies for big
        # batches from ever waiting on WINDOW_UPDATEs.
        self.h2.increment_flow_control_window((1 << 24) - 65535)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self.transport = None
        why = f"connection lost: {exc!r}" if exc else "connection closed by server"
        if not self.ready.done():
            # Closed before the server's SETTINGS: typically the TLS client
            # certificate was refused (TLS 1.3 reports that only after the handshake).
            why += " during connection setup (client certificate refused?)"
            self.ready.set_exception(ConnectionError(why))
            self.ready.exception()  # mark retrieved; the connector reads it if still waiting
        if not self.closed.done():
            self.closed.set_result(None)
        reqs = list(self.streams.values())
        self.streams.clear()
        self.engine.conn_lost(self, reqs, why)

    def data_received(self, data: bytes) -> None:
        self.last_rx = self.engine.loop.time()
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:
            self.flush()
            self.abort(f"HTTP/2 protocol error: {exc!r}")
            return
        engine = self.engine
        streams = self.streams
        done = 0
        for ev in events:
            if type(ev) is ResponseReceived:
                req = streams.get(ev.stream_id)
                if req is not None:
                    req.read_headers(ev.headers)
            elif type(ev) is DataReceived:
                req = streams.get(ev.stream_id)
                if req is not None:
                    req.body += ev.data
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif type(ev) is StreamEnded:
                req = streams.pop(ev.stream_id, None)
                if req is not None:
                    engine.complete(req)
                    done += 1
                    # One read can carry hundreds of responses. Refill the freed
                    # streams as we go so the server works on the next requests
                    # while we are still parsing, instead of both sides taking
                    # turns on whole windows.
                    if done % _REFILL_EVERY == 0 and engine.pending:
                        engine.pump()
            else:
                self._control_event(ev)
        # New streams first (they may ride in the same write as our ACKs).
        if engine.pending:
            engine.pump()
        self.flush()
        if not self.usable and not self.streams and self.ready.done() and self.transport:
            self.transport.close()  # draining after GOAWAY: last answer is in

    def _control_event(self, ev: Event) -> None:
        # The events other than a response's: one call each, off the per-push path above.
        if type(ev) is StreamReset:
            req = self.streams.pop(ev.stream_id, None)
            if req is not None:
                # REFUSED_STREAM promises the request was not processed.
                self.engine.requeue_or_fail(req, f"stream reset by server ({ev.error_code!r})")
        elif type(ev) is RemoteSettingsChanged:
            if not self.ready.done():
                self.usable = True
                self.ready.set_result(None)
        elif type(ev) is ConnectionTerminated:
            self.goaway(ev.last_stream_id, ev.error_code)

    # helpers

    def flush(self) -> None:
        out = self.h2.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def capacity(self) -> int:
        limit = min(self.h2.remote_settings.max_concurrent_streams, self.engine.per_conn_limit)
        return limit - len(self.streams)

    def goaway(self, last_stream_id: int | None, code: Any) -> None:
        self.usable = False
        why = f"server sent GOAWAY ({code!r})"
        if last_stream_id is not None:
            # Streams above last_stream_id were never processed: safe to send elsewhere.
            for sid in [s for s in self.streams if s > last_stream_id]:
                self.engine.requeue_or_fail(self.streams.pop(sid), why, free_retry=True)
        if not self.streams and self.transport is not None:
            self.transport.close()

    def abort(self, why: str) -> None:
        self.usable = False
        if self.transport is not None:
            log.debug("APNs connection aborted: %s", why)
            self.transport.abort()


class _Engine:
    """All state lives on the loop thread; nothing here is touched from other threads."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        host: str,
        port: int,
        authority: bytes,
        ssl_ctx: ssl.SSLContext,
        concurrency: int,
        connections: int,
        timeout: float,
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.authority = authority
        self.ssl_ctx = ssl_ctx
        self.connections = connections
        self.per_conn_limit = max(1, -(-concurrency // connections))
        self.timeout = timeout
        self.conns: list[_Conn] = []
        self.pending: deque[_Batch] = deque()
        self.active: set[_Batch] = set()
        self.connect_lock = asyncio.Lock()
        self.last_error: str | None = None
        self.responses = 0  # answered streams, all batches: the idle timeout watches it

    # sending

    def enqueue(self, batch: _Batch) -> None:
        if not batch.queued and not batch.done and batch.has_unsent:
            batch.queued = True
            self.pending.append(batch)

    def pump(self) -> None:
        """Open as many streams as the connections allow; one write per connection."""
        pending = self.pending
        for conn in self.conns:
            if not pending:
                return
            if not conn.usable:
                continue
            cap = conn.capacity()
            if cap <= 0:
                continue
            h2 = conn.h2
            streams = conn.streams
            now = self.loop.time()
            sent = 0
            while sent < cap and pending:
                batch = pending[0]
                req = batch.take()
                if req is None:
                    batch.queued = False
                    pending.popleft()
                    continue
                # Flow control: PAYLOAD must fit the connection's and the new stream's
                # window; a WINDOW_UPDATE triggers data_received and thus the next pump.
                if (
                    h2.outbound_flow_control_window < _PAYLOAD_LEN
                    or h2.remote_settings.initial_window_size < _PAYLOAD_LEN
                ):
                    batch.put_back(req)
                    break
                sid = h2.get_next_available_stream_id()
                if sid > _MAX_STREAM_ID:
                    batch.put_back(req)
                    conn.goaway(None, "stream ids exhausted")  # drain; a new one replaces it
                    break
                headers = [
                    (b":method", b"POST"),
                    (b":scheme", b"https"),
                    (b":path", b"/3/device/" + req.token),
                    (b":authority", self.authority),
                    *batch.headers_tail,
                ]
                try:
                    h2.send_headers(sid, headers)
                    h2.send_data(sid, PAYLOAD, end_stream=True)
                except H2Error as exc:  # e.g. TooManyStreamsError after a SETTINGS change
                    batch.put_back(req)
                    log.debug("APNs: could not open stream: %r", exc)
                    break
                req.sent_at = now
                streams[sid] = req
                sent += 1
                if sent % _REFILL_EVERY == 0:
                    conn.flush()  # get the first requests moving while we build the rest
            if sent:
                conn.flush()

    def complete(self, req: _Req) -> None:
        self.responses += 1
        batch = req.batch
        if batch.done:
            return
        status = req.status
        reason: str | None = None
        timestamp: int | None = None
        if status != 200 and req.body:
            try:
                body = json.loads(req.body)
            except ValueError:
                body = None
            if isinstance(body, dict):
                r = body.get("reason")
                reason = r if isinstance(r, str) else None
                ts = body.get("timestamp")
                timestamp = int(ts) if isinstance(ts, int | float) else None
        self._finish(
            batch,
            req.idx,
            PushResult(
                token=batch.tokens[req.idx],
                status=status,
                outcome=classify(status, reason),
                reason=reason,
                timestamp_ms=timestamp,
                apns_id=req.apns_id.decode("latin-1") if req.apns_id else None,
                retry_after=_parse_retry_after(req.retry_after),
            ),
        )

    def fail(self, batch: _Batch, idx: int, reason: str) -> None:
        self._finish(
            batch,
            idx,
            PushResult(batch.tokens[idx], None, PushOutcome.RETRY, reason, None, None, None),
        )

    def _finish(self, batch: _Batch, idx: int, result: PushResult) -> None:
        if batch.results[idx] is None:
            batch.results[idx] = result
            batch.remaining -= 1
            batch.progress += 1
            if batch.remaining == 0:
                batch.done = True
                batch.wake.set()

    def requeue_or_fail(self, req: _Req, why: str, *, free_retry: bool = False) -> None:
        """A push whose connection went away gets one more try (a duplicate update
        push is harmless: the device just asks for changed passes again)."""
        batch = req.batch
        if batch.done:
            return
        if free_retry or req.attempt == 0:
            if not free_retry:
                req.attempt += 1
            batch.retry.append(req)
            self.enqueue(batch)
        else:
            self.fail(batch, req.idx, why)

    def conn_lost(self, conn: _Conn, reqs: list[_Req], why: str) -> None:
        with contextlib.suppress(ValueError):
            self.conns.remove(conn)
        self.last_error = why
        for req in reqs:
            self.requeue_or_fail(req, why)
        if self.pending:
            self.pump()
        # Wake every waiting call so it can reconnect (or give up) now, not at its timeout.
        for batch in self.active:
            batch.wake.set()

    # connecting

    def usable_conns(self) -> int:
        return sum(1 for c in self.conns if c.usable)

    async def _connect_one(self) -> _Conn:
        conn = _Conn(self)
        try:
            async with asyncio.timeout(self.timeout):
                await self.loop.create_connection(
                    lambda: conn, self.host, self.port, ssl=self.ssl_ctx, server_hostname=self.host
                )
                assert conn.transport is not None
                ssl_obj = conn.transport.get_extra_info("ssl_object")
                if ssl_obj is None or ssl_obj.selected_alpn_protocol() != "h2":
                    raise ConnectionError("server did not negotiate HTTP/2 (ALPN h2)")
                # Wait for the server's SETTINGS so MAX_CONCURRENT_STREAMS is known
                # before the first stream (APNs may allow only one at first).
                await asyncio.shield(conn.ready)
        except BaseException:
            conn.abort("connect failed")
            raise
        return conn

    async def top_up(self) -> None:
        """Bring the pool up to ``connections`` live connections (one attempt each)."""
        async with self.connect_lock:
            missing = self.connections - len([c for c in self.conns if c.usable])
            if missing <= 0:
                return
            results = await asyncio.gather(
                *(self._connect_one() for _ in range(missing)), return_exceptions=True
            )
            for r in results:
                if isinstance(r, _Conn):
                    if r.usable:
                        self.conns.append(r)
                elif isinstance(r, BaseException):
                    if isinstance(r, asyncio.CancelledError):
                        raise r
                    self.last_error = f"connect to {self.host}:{self.port} failed: {r!r}"
                    log.warning("APNs %s", self.last_error)

    # one send_many call

    async def send(self, topic: str, tokens: list[str]) -> list[PushResult]:
        batch = _Batch(topic, tokens)
        if not tokens:
            return []
        self.active.add(batch)
        try:
            await self._drive(batch)
        finally:
            self.active.discard(batch)
            batch.done = True
            self._forget(batch)
        return [r for r in batch.results if r is not None]

    async def _drive(self, batch: _Batch) -> None:
        rounds = 0
        if self.usable_conns() < self.connections:
            rounds += 1
            await self.top_up()
        self.enqueue(batch)
        seen_batch, seen_all = batch.progress, self.responses
        while batch.remaining:
            if not self.usable_conns() and batch.has_unsent:
                if rounds >= _MAX_CONNECT_ROUNDS:
                    self._give_up(batch, self.last_error or "no connection to APNs")
                    return
                rounds += 1
                await self.top_up()
                continue
            self.pump()
            batch.wake.clear()
            if batch.remaining == 0:
                return
            try:
                async with asyncio.timeout(self.timeout):
                    await batch.wake.wait()
            except TimeoutError:
                # Give up when nothing at all came back for a whole timeout, or
                # when everything of ours is sent and none of it got answered
                # (a stalled stream). Merely queueing behind another caller's
                # batch on a working connection is not a timeout.
                stalled = batch.progress == seen_batch and not batch.has_unsent
                if self.responses == seen_all or stalled:
                    self._give_up(batch, "timeout: no response from APNs")
                    return
                seen_batch, seen_all = batch.progress, self.responses

    def _give_up(self, batch: _Batch, why: str) -> None:
        for conn in list(self.conns):
            mine = [sid for sid, r in conn.streams.items() if r.batch is batch]
            oldest = min((conn.streams[sid].sent_at for sid in mine), default=None)
            for sid in mine:
                req = conn.streams.pop(sid)
                with contextlib.suppress(H2Error):
                    conn.h2.reset_stream(sid, ErrorCodes.CANCEL)
                self.fail(batch, req.idx, why)
            conn.flush()
            if oldest is not None and conn.last_rx < oldest:
                # Not a single frame since these requests went out: the connection
                # is dead (half-open), not just slow on one token. Drop it.
                conn.abort("no response since the requests were sent")
        for i, r in enumerate(batch.results):
            if r is None:
                self.fail(batch, i, why)

    def _forget(self, batch: _Batch) -> None:
        if batch.queued:
            with contextlib.suppress(ValueError):
                self.pending.remove(batch)
            batch.queued = False

    async def aclose(self) -> None:
        for batch in list(self.active):
            self._give_up(batch, "client closed")
            batch.wake.set()
        conns, self.conns = self.conns, []
        for conn in conns:
            conn.usable = False
            if conn.transport is not None:
                with contextlib.suppress(H2Error):
                    conn.h2.close_connection()
                conn.flush()
                conn.transport.close()
        waiting = [c.closed for c in conns if not c.closed.done()]
        if waiting:
            _, still = await asyncio.wait(waiting, timeout=2.0)
            if still:
                for conn in conns:
                    conn.abort("close timeout")
                await asyncio.wait(still, timeout=1.0)


# -- public sync API -------------------------------------------------------------------


class ApnsClient:
    """Synchronous facade; the HTTP/2 work happens on a private loop thread.

    Thread-safe: several worker threads may call :meth:`send_many` at once; their
    pushes share the same connections.
    """

    def __init__(
        self,
        *,
        base_url: str,
        cert: str | Path | bytes,
        key: str | Path | bytes,
        ca_file: str | None = None,
        concurrency: int = 500,
        connections: int = 1,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"APNs base URL must be https://host[:port], got {base_url!r}")
        if concurrency < 1 or connections < 1:
            raise ValueError("concurrency and connections must be >= 1")
        self.base_url = base_url
        self._host = parts.hostname
        self._port = parts.port or 443
        self._authority = (
            self._host if parts.port in (None, 443) else f"{self._host}:{parts.port}"
        ).encode()
        # Built now so a bad certificate/key fails at construction, not in the loop thread.
        self._ssl_ctx = _client_ssl_context(cert, key, ca_file)
        self._concurrency = concurrency
        self._connections = connections
        self._timeout = timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: _Engine | None = None

    def _start(self) -> tuple[asyncio.AbstractEventLoop, _Engine]:
        with self._lock:
            if self._loop is not None and self._engine is not None:
                return self._loop, self._engine
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_log_loop_exception)
            engine = _Engine(
                loop,
                host=self._host,
                port=self._port,
                authority=self._authority,
                ssl_ctx=self._ssl_ctx,
                concurrency=self._concurrency,
                connections=self._connections,
                timeout=self._timeout,
            )
            thread = threading.Thread(
                target=_run_loop, args=(loop,), name="walletpass-apns", daemon=True
            )
            thread.start()
            self._loop, self._thread, self._engine = loop, thread, engine
            return loop, engine

    def send_many(self, topic: str, tokens: Sequence[str]) -> list[PushResult]:
        """Push to every distinct token; results in input order (duplicates share one)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("send_many must not be called from the APNs loop thread")
        order: dict[str, int] = {}
        distinct: list[str] = []
        local: dict[str, PushResult] = {}
        for tok in tokens:
            if tok in order or tok in local:
                continue
            if _TOKEN_RE.match(tok) is None:
                # Not even URL-safe: can't be a real token; treat as APNs would.
                local[tok] = PushResult(
                    tok, None, PushOutcome.BAD_TOKEN, "BadDeviceToken", None, None, None
                )
                continue
            order[tok] = len(distinct)
            distinct.append(tok)
        sent: list[PushResult] = []
        if distinct:
            loop, engine = self._start()
            fut = asyncio.run_coroutine_threadsafe(engine.send(topic, distinct), loop)
            sent = fut.result()
        return [local[t] if t in local else sent[order[t]] for t in tokens]

    def close(self) -> None:
        """Close the connections and stop the loop thread. A later send_many starts afresh."""
        with self._lock:
            loop, thread, engine = self._loop, self._thread, self._engine
            self._loop = self._thread = self._engine = None
        if loop is None or thread is None or engine is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(engine.aclose(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    def __enter__(self) -> ApnsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Transport errors already surface as RETRY results; the loop's default handler
    # would print tracebacks to stderr for what is an ordinary network failure.
    exc = context.get("exception")
    level = logging.DEBUG if isinstance(exc, OSError) else logging.WARNING
    log.log(level, "APNs loop: %s", context.get("message"), exc_info=exc)


class NullPushClient:
    """Stands in for :class:`ApnsClient` without a network: every push succeeds.

    ``sent`` records ``(topic, token)`` for each distinct token of each call.
    """

    def __init__(self, **_: Any) -> None:
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def send_many(self, topic: str, tokens: Sequence[str]) -> list[PushResult]:
        results: dict[str, PushResult] = {}
        with self._lock:
            for tok in tokens:
                if tok not in results:
                    self.sent.append((topic, tok))
                    results[tok] = PushResult(tok, 200, PushOutcome.OK, None, None, None, None)
        return [results[t] for t in tokens]

    def close(self) -> None:
        pass
