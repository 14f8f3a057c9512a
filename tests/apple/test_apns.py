"""ApnsClient against a real HTTP/2 + TLS APNs stand-in on 127.0.0.1."""

from __future__ import annotations

import pathlib
import socket
import ssl
import sys
import threading

import pytest

_TESTS = str(pathlib.Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # until the shared conftest puts tests/ on sys.path
    sys.path.insert(0, _TESTS)

from standins.apns_server import ApnsStandIn  # noqa: E402
from standins.tls import PKI, make_test_pki  # noqa: E402

from walletpass.apple.apns import (  # noqa: E402
    ApnsClient,
    NullPushClient,
    PushOutcome,
    PushResult,
    StatelessHpackEncoder,
    classify,
)


def tok(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_test_pki(tmp_path_factory.mktemp("apns-pki"))


@pytest.fixture
def standin(pki: PKI):
    s = ApnsStandIn(pki.ca_cert, pki.server_cert, pki.server_key, topic=pki.pass_type_id)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def client(pki: PKI, standin: ApnsStandIn):
    c = ApnsClient(
        base_url=standin.url,
        cert=pki.client_cert,
        key=pki.client_key,
        ca_file=str(pki.ca_cert),
        timeout=3.0,
    )
    yield c
    c.close()


def test_push_arrives_with_path_topic_payload_and_client_cert(
    pki: PKI, standin: ApnsStandIn, client: ApnsClient
) -> None:
    [result] = client.send_many(pki.pass_type_id, [tok(1)])

    assert result.outcome is PushOutcome.OK
    assert result.status == 200
    assert result.token == tok(1)
    assert result.apns_id
    [push] = standin.received
    assert push.token == tok(1)
    assert push.headers[":method"] == "POST"
    assert push.headers[":path"] == f"/3/device/{tok(1)}"
    assert push.headers["apns-topic"] == pki.pass_type_id
    assert push.headers["apns-push-type"] == "background"
    assert push.headers["apns-priority"] == "5"
    assert push.body == b"{}"
    # The Pass Type ID certificate was presented as the TLS client certificate.
    assert standin.peer_subjects[0]["userId"] == pki.pass_type_id
    assert standin.peer_subjects[0]["organizationalUnitName"] == pki.team_id


def test_thousand_pushes_share_one_connection(
    pki: PKI, standin: ApnsStandIn, client: ApnsClient
) -> None:
    tokens = [tok(i) for i in range(1000)]
    results = client.send_many(pki.pass_type_id, tokens[:400])
    results += client.send_many(pki.pass_type_id, tokens[400:])

    assert [r.token for r in results] == tokens
    assert all(r.outcome is PushOutcome.OK for r in results)
    assert standin.count == 1000
    assert {p.token for p in standin.received} == set(tokens)
    assert standin.connections == 1


def test_error_statuses_are_classified(pki: PKI, standin: ApnsStandIn, client: ApnsClient) -> None:
    standin.respond(tok(1), 410, "Unregistered", timestamp=1_700_000_000_123)
    standin.respond(tok(2), 400, "BadDeviceToken")
    standin.respond(tok(3), 403, "BadCertificate")
    standin.respond(tok(4), 429, "TooManyRequests", retry_after=30)
    standin.respond(tok(5), 500, "InternalServerError")
    standin.respond(tok(6), 400, "DeviceTokenNotForTopic")
    standin.respond(tok(7), 413, "PayloadTooLarge")
    standin.respond(tok(8), 503, "ServiceUnavailable", times=1)

    results = client.send_many(pki.pass_type_id, [tok(i) for i in range(9)])
    by = {r.token: r for r in results}

    assert by[tok(0)].outcome is PushOutcome.OK
    assert by[tok(1)].outcome is PushOutcome.UNREGISTERED
    assert by[tok(1)].status == 410
    assert by[tok(1)].timestamp_ms == 1_700_000_000_123
    assert by[tok(2)].outcome is PushOutcome.BAD_TOKEN
    assert by[tok(2)].reason == "BadDeviceToken"
    assert by[tok(3)].outcome is PushOutcome.CERTIFICATE
    assert by[tok(3)].reason == "BadCertificate"
    assert by[tok(4)].outcome is PushOutcome.RETRY
    assert by[tok(4)].retry_after == 30.0
    assert by[tok(5)].outcome is PushOutcome.RETRY
    assert by[tok(6)].outcome is PushOutcome.BAD_TOKEN
    assert by[tok(7)].outcome is PushOutcome.ERROR
    assert by[tok(8)].outcome is PushOutcome.RETRY
    # times=1: the second attempt goes through.
    assert client.send_many(pki.pass_type_id, [tok(8)])[0].outcome is PushOutcome.OK


def test_410_without_explicit_timestamp_gets_one(
    pki: PKI, standin: ApnsStandIn, client: ApnsClient
) -> None:
    standin.respond(tok(1), 410, "Unregistered")
    [r] = client.send_many(pki.pass_type_id, [tok(1)])
    assert r.outcome is PushOutcome.UNREGISTERED
    assert isinstance(r.timestamp_ms, int)
    assert r.timestamp_ms > 1_600_000_000_000


def test_duplicate_tokens_are_pushed_once(
    pki: PKI, standin: ApnsStandIn, client: ApnsClient
) -> None:
    tokens = [tok(1), tok(2), tok(1), tok(3), tok(2), tok(1)]
    results = client.send_many(pki.pass_type_id, tokens)

    assert [r.token for r in results] == tokens
    assert results[0] is results[2] is results[5]
    assert sorted(p.token for p in standin.received) == [tok(1), tok(2), tok(3)]


def test_wrong_topic_and_malformed_token(
    pki: PKI, standin: ApnsStandIn, client: ApnsClient
) -> None:
    [wrong] = client.send_many("pass.example.other", [tok(1)])
    assert (wrong.status, wrong.reason, wrong.outcome) == (400, "BadTopic", PushOutcome.ERROR)

    # Not hex: the stand-in (like APNs) rejects it; not URL-safe: never sent at all.
    results = client.send_many(pki.pass_type_id, ["zz" * 32, "bad/token", ""])
    assert [r.outcome for r in results] == [PushOutcome.BAD_TOKEN] * 3
    assert results[0].status == 400
    assert results[1].status is None
    assert results[2].status is None
    assert standin.count == 0


def test_pem_bytes_credentials(pki: PKI, standin: ApnsStandIn) -> None:
    c = ApnsClient(
        base_url=standin.url,
        cert=pki.client_cert.read_bytes(),
        key=pki.client_key.read_bytes(),
        ca_file=str(pki.ca_cert),
        timeout=3.0,
    )
    try:
        assert c.send_many(pki.pass_type_id, [tok(1)])[0].outcome is PushOutcome.OK
    finally:
        c.close()


def test_client_without_certificate_is_refused(pki: PKI, standin: ApnsStandIn) -> None:
    # A Pass Type ID-shaped certificate from a CA the stand-in does not trust.
    cert, key = _untrusted_client_pair(pki)
    c = ApnsClient(
        base_url=standin.url,
        cert=cert,
        key=key,
        ca_file=str(pki.ca_cert),
        timeout=2.0,
    )
    try:
        results = c.send_many(pki.pass_type_id, [tok(1), tok(2)])
    finally:
        c.close()
    assert [r.outcome for r in results] == [PushOutcome.RETRY, PushOutcome.RETRY]
    assert all(r.status is None and r.reason for r in results)
    assert standin.count == 0

    # And with no client certificate at all, at the TLS level.
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.set_alpn_protocols(["h2"])
    port = int(standin.url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        # TLS 1.3: the client finishes its side of the handshake first; the
        # server's refusal (an alert, or just the close) arrives with the first read.
        try:
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            data = tls.recv(1024)
        except OSError:  # ssl.SSLError is an OSError
            data = b""
        assert data == b""  # no SETTINGS frame: never got to HTTP/2


def _untrusted_client_pair(pki: PKI) -> tuple[bytes, bytes]:
    other = make_test_pki(pki.directory / "untrusted", pass_type_id=pki.pass_type_id)
    return other.client_cert.read_bytes(), other.client_key.read_bytes()


def test_unreachable_server_is_retry_not_crash(pki: PKI) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = ApnsClient(
        base_url=f"https://127.0.0.1:{port}",
        cert=pki.client_cert,
        key=pki.client_key,
        ca_file=str(pki.ca_cert),
        timeout=1.0,
    )
    try:
        [r] = c.send_many(pki.pass_type_id, [tok(1)])
        assert r.outcome is PushOutcome.RETRY
        assert r.reason
        assert "connect" in r.reason
    finally:
        c.close()


def test_restarted_server_client_reconnects(
    pki: PKI, standin: ApnsStandIn, client: ApnsClient
) -> None:
    assert client.send_many(pki.pass_type_id, [tok(1)])[0].outcome is PushOutcome.OK
    standin.stop()
    standin.start()  # same port
    results = client.send_many(pki.pass_type_id, [tok(2), tok(3)])
    assert [r.outcome for r in results] == [PushOutcome.OK, PushOutcome.OK]
    assert standin.connections == 2
    assert standin.count == 3


def test_server_down_then_back(pki: PKI, standin: ApnsStandIn, client: ApnsClient) -> None:
    assert client.send_many(pki.pass_type_id, [tok(1)])[0].outcome is PushOutcome.OK
    standin.stop()
    [down] = client.send_many(pki.pass_type_id, [tok(2)])
    assert down.outcome is PushOutcome.RETRY
    assert down.status is None
    standin.start()
    assert client.send_many(pki.pass_type_id, [tok(2)])[0].outcome is PushOutcome.OK


def test_silent_server_times_out_as_retry(pki: PKI, standin: ApnsStandIn) -> None:
    standin.stall(tok(1))
    c = ApnsClient(
        base_url=standin.url,
        cert=pki.client_cert,
        key=pki.client_key,
        ca_file=str(pki.ca_cert),
        timeout=0.5,
    )
    try:
        results = c.send_many(pki.pass_type_id, [tok(0), tok(1), tok(2)])
        assert [r.outcome for r in results] == [PushOutcome.OK, PushOutcome.RETRY, PushOutcome.OK]
        assert "timeout" in (results[1].reason or "")
        # The connection was not silent (other streams answered), so it is kept.
        assert c.send_many(pki.pass_type_id, [tok(3)])[0].outcome is PushOutcome.OK
        assert standin.connections == 1
    finally:
        c.close()


def test_two_connections_and_concurrent_callers(pki: PKI, standin: ApnsStandIn) -> None:
    c = ApnsClient(
        base_url=standin.url,
        cert=pki.client_cert,
        key=pki.client_key,
        ca_file=str(pki.ca_cert),
        connections=2,
        concurrency=50,
        timeout=3.0,
    )
    out: dict[int, list[PushResult]] = {}

    def worker(n: int) -> None:
        out[n] = c.send_many(pki.pass_type_id, [tok(n * 1000 + i) for i in range(200)])

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        c.close()
    assert sorted(out) == [0, 1, 2, 3]
    assert all(r.outcome is PushOutcome.OK for rs in out.values() for r in rs)
    assert standin.count == 800
    assert standin.connections == 2


def test_respects_server_max_concurrent_streams(pki: PKI) -> None:
    with ApnsStandIn(
        pki.ca_cert,
        pki.server_cert,
        pki.server_key,
        topic=pki.pass_type_id,
        max_concurrent_streams=3,
    ) as s:
        c = ApnsClient(
            base_url=s.url, cert=pki.client_cert, key=pki.client_key, ca_file=str(pki.ca_cert)
        )
        try:
            results = c.send_many(pki.pass_type_id, [tok(i) for i in range(100)])
        finally:
            c.close()
        # Opening a 4th stream would have been refused (RST_STREAM) by h2 on the server.
        assert all(r.outcome is PushOutcome.OK for r in results)
        assert s.count == 100


def test_close_then_reuse_starts_afresh(pki: PKI, standin: ApnsStandIn, client: ApnsClient) -> None:
    assert client.send_many(pki.pass_type_id, [tok(1)])[0].outcome is PushOutcome.OK
    client.close()
    client.close()  # idempotent
    assert client.send_many(pki.pass_type_id, [tok(2)])[0].outcome is PushOutcome.OK
    assert client.send_many(pki.pass_type_id, []) == []


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (200, None, PushOutcome.OK),
        (410, "Unregistered", PushOutcome.UNREGISTERED),
        (400, "BadDeviceToken", PushOutcome.BAD_TOKEN),
        (400, "DeviceTokenNotForTopic", PushOutcome.BAD_TOKEN),
        (400, "BadTopic", PushOutcome.ERROR),
        (403, "ExpiredProviderToken", PushOutcome.CERTIFICATE),
        (403, "BadCertificateEnvironment", PushOutcome.CERTIFICATE),
        (404, "BadPath", PushOutcome.ERROR),
        (429, "TooManyRequests", PushOutcome.RETRY),
        (500, None, PushOutcome.RETRY),
        (503, "ServiceUnavailable", PushOutcome.RETRY),
        (None, "connection lost", PushOutcome.RETRY),
    ],
)
def test_classify(status: int | None, reason: str | None, outcome: PushOutcome) -> None:
    assert classify(status, reason) is outcome


def test_null_client_records_distinct_tokens() -> None:
    c = NullPushClient()
    results = c.send_many("pass.x", ["a", "b", "a"])
    assert [r.outcome for r in results] == [PushOutcome.OK] * 3
    assert c.sent == [("pass.x", "a"), ("pass.x", "b")]
    c.close()


def test_stateless_hpack_round_trips() -> None:
    from hpack import Decoder

    headers = [
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":path", b"/3/device/" + tok(7).encode()),
        (b":authority", b"api.push.apple.com"),
        (b"apns-topic", b"pass.x"),
        (b"x-" + b"long" * 40, b"v" * 300),  # multi-byte length prefixes
    ]
    enc = StatelessHpackEncoder()
    dec = Decoder()
    for _ in range(3):  # cached fields encode the same
        assert dec.decode(enc.encode(headers), raw=True) == headers
