"""An APNs stand-in: a real HTTP/2-over-TLS server (h2 + asyncio) that answers like Apple.

Runs its own event loop in a background thread so synchronous tests can start
it, point a client at the returned URL and stop it again::

    with ApnsStandIn(pki.ca_cert, pki.server_cert, pki.server_key, topic=pki.pass_type_id) as s:
        url = s.url
        ...

TLS requires a client certificate signed by the test CA (``CERT_REQUIRED``),
so a client that presents none is refused during the handshake, like Apple's
certificate-based endpoint. The subject of every presented client certificate
is kept in :attr:`ApnsStandIn.peer_subjects`, and, like APNs, a push whose
``apns-topic`` is not the connection's certificate's topic (its UID) is answered
400 TopicDisallowed. ``topic=None`` serves every certificate's own topic (several
pass types, e.g. merchants with certificates of their own); a topic given is the
only one accepted (400 BadTopic for another).

Per request it checks method, path, ``apns-topic`` and payload, and replies
200 + ``apns-id`` or an error status with a JSON ``{"reason": ...}`` body.
Replies per token can be programmed with :meth:`ApnsStandIn.respond`.

It is meant to keep well ahead of the client in the push benchmark, so the
per-request path does no logging and as little work as possible: h2's
header validation/normalisation is switched off (we do our own checks), and
all frames produced while handling one read are written with a single
``transport.write``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

from walletpass.apple.apns import StatelessHpackEncoder

MAX_PAYLOAD = 4096
# Real tokens are 64 hex digits today; Apple says they may grow, so accept
# any even-length hex string of at least 32 digits ("64-hex-ish").
_TOKEN_RE = re.compile(rb"^/3/device/([0-9a-fA-F]{32,200})$")


@dataclass(frozen=True)
class ReceivedPush:
    token: str
    headers: dict[str, str]
    body: bytes
    time: float
    connection: int


@dataclass
class _Rule:
    status: int | None  # None = never answer (lets tests exercise client timeouts)
    reason: str | None
    times: int | None
    timestamp: int | None
    retry_after: str | None


@dataclass
class _Stream:
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)


class _H2Server(H2Connection):
    """h2 scans every stream to count open inbound ones on each new stream (O(n));
    the stand-in counts them itself and lets h2 prune closed streams now and then."""

    def __init__(self, config: H2Configuration, proto: _ServerProtocol) -> None:
        super().__init__(config)
        self._proto = proto
        self._until_sweep = 256

    @property
    def open_inbound_streams(self) -> int:
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._until_sweep = 256
            return super().open_inbound_streams
        return len(self._proto.streams) + len(self._proto.stalled)


class _ServerProtocol(asyncio.Protocol):
    def __init__(self, standin: ApnsStandIn) -> None:
        self.standin = standin
        self.stalled: set[int] = set()  # streams never answered on purpose (open for h2)
        self.streams: dict[int, _Stream] = {}
        self.conn = _H2Server(
            H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
            ),
            self,
        )
        # No Huffman/dynamic table: keeps the stand-in cheap (see the encoder's docstring).
        self.conn.encoder = StatelessHpackEncoder()
        self.apns_id_prefix = str(uuid.uuid4()).upper()[:24]
        self.apns_id_seq = 0
        self.transport: asyncio.Transport | None = None
        self.conn_no = 0
        # The UID (pass type) of the connection's client certificate.
        self.peer_topic: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn_no = self.standin._connection_made(self, transport)
        # Replaced (not updated) so the values go out in the preface SETTINGS;
        # update() would only apply them after a second round trip.
        self.conn.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: self.standin.max_concurrent_streams,
                SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            },
        )
        self.conn.initiate_connection()
        # A big connection window so flow control never throttles the bench;
        # we still acknowledge data as it arrives.
        self.conn.increment_flow_control_window((1 << 30) - 65535)
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.standin._connection_lost(self)
        self.streams.clear()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        try:
            events = conn.receive_data(data)
        except ProtocolError:
            out = conn.data_to_send()
            if out and self.transport is not None:
                self.transport.write(out)
            if self.transport is not None:
                self.transport.close()
            return
        streams = self.streams
        handled = 0
        acked = ack_sid = 0
        for ev in events:
            t = type(ev)
            if t is RequestReceived:
                streams[ev.stream_id] = _Stream(ev.headers)
            elif t is DataReceived:
                s = streams.get(ev.stream_id)
                if s is not None:
                    s.body += ev.data
                # Acked once per read (below): streams are tiny and short-lived, so
                # only the connection window matters.
                acked += ev.flow_controlled_length
                ack_sid = ev.stream_id
            elif t is StreamEnded:
                s = streams.pop(ev.stream_id, None)
                if s is not None:
                    self._handle(ev.stream_id, s)
                    handled += 1
                    # Answer in slices so the client can work on them while we parse on.
                    if handled % 64 == 0 and self.transport is not None:
                        self.transport.write(conn.data_to_send())
            elif t is StreamReset:
                streams.pop(ev.stream_id, None)
                self.stalled.discard(ev.stream_id)
            elif t is ConnectionTerminated and self.transport is not None:
                self.transport.close()
        if acked:
            conn.acknowledge_received_data(acked, ack_sid)
        out = conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def _next_apns_id(self) -> bytes:
        # UUID-shaped and unique per connection, without uuid4()'s cost per reply.
        self.apns_id_seq += 1
        return f"{self.apns_id_prefix}{self.apns_id_seq:012X}".encode()

    def _reply(
        self,
        stream_id: int,
        status: int,
        reason: str | None,
        *,
        apns_id: bytes | None = None,
        timestamp: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        headers = [
            (b":status", str(status).encode()),
            # Like Apple: echo the client's apns-id, or make one up.
            (b"apns-id", apns_id or self._next_apns_id()),
        ]
        if retry_after is not None:
            headers.append((b"retry-after", retry_after.encode()))
        if status == 200:
            self.conn.send_headers(stream_id, headers, end_stream=True)
            return
        body: dict[str, Any] = {"reason": reason or "InternalServerError"}
        if timestamp is not None:
            body["timestamp"] = timestamp
        data = json.dumps(body).encode()
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(data)).encode()))
        self.conn.send_headers(stream_id, headers)
        self.conn.send_data(stream_id, data, end_stream=True)

    def _handle(self, stream_id: int, s: _Stream) -> None:
        h: dict[bytes, bytes] = {}
        for k, v in s.headers:
            h[k] = v
        if h.get(b":method") != b"POST":
            self._reply(stream_id, 405, "MethodNotAllowed")
            return
        m = _TOKEN_RE.match(h.get(b":path", b""))
        if m is None:
            path = h.get(b":path", b"")
            if path.startswith(b"/3/device/"):
                self._reply(stream_id, 400, "BadDeviceToken")
            else:
                self._reply(stream_id, 404, "BadPath")
            return
        topic = h.get(b"apns-topic")
        standin = self.standin
        if topic is None:
            self._reply(stream_id, 400, "MissingTopic")
            return
        topic_text = topic.decode("latin-1")
        if standin.topic is not None and topic_text != standin.topic:
            self._reply(stream_id, 400, "BadTopic")
            return
        if self.peer_topic is not None and topic_text != self.peer_topic:
            # Like APNs: a certificate connection may push only to its own topic, the
            # pass type in its certificate's UID.
            self._reply(stream_id, 400, "TopicDisallowed")
            return
        body = bytes(s.body)
        if len(body) > MAX_PAYLOAD:
            self._reply(stream_id, 413, "PayloadTooLarge")
            return
        if body != b"{}":  # fast path for the only payload passes use
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                self._reply(stream_id, 400, "BadPayload")
                return
        token = m.group(1).decode("ascii")
        rule = standin._take_rule(token) if standin._rules else None
        standin._record(
            ReceivedPush(
                token=token,
                headers={k.decode("latin-1"): v.decode("latin-1") for k, v in s.headers},
                body=body,
                time=time.time(),
                connection=self.conn_no,
            )
            if standin.keep_requests
            else None
        )
        apns_id = h.get(b"apns-id")
        if rule is None:
            self._reply(stream_id, 200, None, apns_id=apns_id)
        elif rule.status is None:
            self.stalled.add(stream_id)  # never answer this stream
            return
        else:
            ts = rule.timestamp
            if rule.status == 410 and ts is None:
                ts = int(time.time() * 1000)
            self._reply(
                stream_id,
                rule.status,
                rule.reason,
                apns_id=apns_id,
                timestamp=ts,
                retry_after=rule.retry_after,
            )


class ApnsStandIn:
    """HTTP/2 + TLS APNs look-alike on 127.0.0.1, run in a background thread."""

    def __init__(
        self,
        ca_file: str | Path,
        cert_file: str | Path,
        key_file: str | Path,
        *,
        topic: str | None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_concurrent_streams: int = 1000,
        keep_requests: bool = True,
    ) -> None:
        self.topic = topic
        self.host = host
        self.port = port
        self.max_concurrent_streams = max_concurrent_streams
        # The bench turns this off: it only needs the count, not 100k records.
        self.keep_requests = keep_requests
        self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ssl.load_cert_chain(str(cert_file), str(key_file))
        self._ssl.load_verify_locations(cafile=str(ca_file))
        self._ssl.verify_mode = ssl.CERT_REQUIRED
        self._ssl.set_alpn_protocols(["h2"])

        self._lock = threading.Lock()
        self._rules: dict[str, list[_Rule]] = {}
        self.received: list[ReceivedPush] = []
        self._count = 0
        self.connections = 0  # connections accepted (TLS handshake done) since creation
        self.peer_subjects: list[dict[str, str]] = []
        self._protocols: set[_ServerProtocol] = set()

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- programming and inspection (any thread) ---------------------------------

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def respond(
        self,
        token: str,
        status: int | None,
        reason: str | None = None,
        times: int | None = None,
        *,
        timestamp: int | None = None,
        retry_after: str | float | None = None,
    ) -> None:
        """Answer pushes to ``token`` with ``status``/``reason``.

        ``times=None`` means for ever; otherwise the rule is used that many times
        and then the next rule (or 200) applies. ``status=None`` means never
        answer. 410 replies carry ``timestamp`` (now, in ms, unless given).
        """
        rule = _Rule(
            status,
            reason,
            times,
            timestamp,
            None if retry_after is None else str(retry_after),
        )
        with self._lock:
            self._rules.setdefault(token.lower(), []).append(rule)

    def stall(self, token: str, times: int | None = None) -> None:
        self.respond(token, None, None, times)

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self.received.clear()
            self._count = 0

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL. After stop(), restarts on the same port."""
        if self._thread is not None:
            raise RuntimeError("already running")
        loop = asyncio.new_event_loop()
        # Handshake failures from deliberately certificate-less clients are
        # expected here; keep them out of stderr.
        loop.set_exception_handler(lambda _loop, _ctx: None)
        ready: dict[str, Any] = {}
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._server = await loop.create_server(
                    lambda: _ServerProtocol(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    reuse_address=True,
                    backlog=128,
                )
                self.port = self._server.sockets[0].getsockname()[1]

            try:
                loop.run_until_complete(boot())
            except BaseException as exc:
                ready["error"] = exc
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="apns-standin", daemon=True)
        self._thread.start()
        started.wait(10)
        if "error" in ready:
            self._thread.join(5)
            self._thread = None
            self._loop = None
            raise ready["error"]
        return self.url

    def stop(self) -> None:
        """Close the listener and every connection, then stop the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for p in list(self._protocols):
                if p.transport is not None:
                    p.transport.abort()
            if self._server is not None:
                await self._server.wait_closed()
            # Let connection_lost callbacks run before the loop goes away.
            for _ in range(50):
                if not self._protocols:
                    break
                await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._server = None
        self._loop = None
        self._thread = None

    def __enter__(self) -> ApnsStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- called from the server loop -----------------------------------------------

    def _connection_made(self, proto: _ServerProtocol, transport: asyncio.Transport) -> int:
        peer = transport.get_extra_info("peercert") or {}
        subject: dict[str, str] = {}
        for rdn in peer.get("subject", ()):
            for k, v in rdn:
                subject[k] = v
        proto.peer_topic = subject.get("userId")
        with self._lock:
            self.connections += 1
            self.peer_subjects.append(subject)
            self._protocols.add(proto)
            return self.connections

    def _connection_lost(self, proto: _ServerProtocol) -> None:
        with self._lock:
            self._protocols.discard(proto)

    def _take_rule(self, token: str) -> _Rule | None:
        with self._lock:
            rules = self._rules.get(token.lower())
            if not rules:
                return None
            rule = rules[0]
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    rules.pop(0)
            return rule

    def _record(self, push: ReceivedPush | None) -> None:
        with self._lock:
            self._count += 1
            if push is not None:
                self.received.append(push)


def serve_in_subprocess(conn: Any, ca: str, cert: str, key: str, topic: str) -> None:
    """multiprocessing target for the benchmark: serve until told to stop.

    Protocol over ``conn`` (a Pipe end): sends the URL once, then answers
    ``"count"`` with the number of accepted pushes, ``"reset"`` with None and
    ``"stop"`` by stopping and exiting.
    """
    standin = ApnsStandIn(ca, cert, key, topic=topic, keep_requests=False)
    conn.send(standin.start())
    try:
        for _ in range(1_000_000):  # bounded; the bench sends a handful of commands
            cmd = conn.recv()
            if cmd == "count":
                conn.send(standin.count)
            elif cmd == "connections":
                conn.send(standin.connections)
            elif cmd == "cpu":  # CPU seconds used by the stand-in process so far
                conn.send(time.process_time())
            elif cmd == "reset":
                standin.reset()
                conn.send(None)
            else:
                break
    except EOFError:
        pass
    finally:
        standin.stop()
        with contextlib.suppress(OSError):
            conn.send("stopped")
