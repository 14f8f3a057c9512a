"""The checks that call out, against real servers on this machine: the APNs stand-in
(HTTP/2 + TLS, client certificate required), a web server at the public URL, and the
Google Wallet stand-in (its OAuth token endpoint and walletobjects over HTTPS)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from healthkit import PASS_TYPE_ID, chain_settings, fresh_caches, with_settings
from standins.google_server import GoogleStandIn, make_service_account
from standins.tls import make_test_pki
from werkzeug.serving import make_server

from walletpass.app import create_app
from walletpass.health.checks import identities
from walletpass.health.doctor import run_checks
from walletpass.health.findings import Status
from walletpass.health.probes import (
    DRY_RUN_TOKEN,
    check_apns,
    check_google,
    check_public_url,
)

__all__ = ["chain_settings", "fresh_caches"]  # fixtures, imported for the tests below
pytestmark = pytest.mark.usefixtures("fresh_caches")

ISSUER = "3388000000012345678"


# ------------------------------------------------------------------ APNs


def _apns_result(runtime, settings, topic: str = PASS_TYPE_ID):  # type: ignore[no-untyped-def]
    with runtime.transaction(readonly=True) as s:
        [item] = identities(s, settings)
    return check_apns(item, settings, topic)


@pytest.fixture
def apns_settings(settings, apns):  # type: ignore[no-untyped-def]
    return settings.override(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))


def test_apns_accepting_the_certificate_is_ok(runtime, apns, apns_settings):
    # What Apple answers a token it never issued, once certificate and topic passed.
    apns.respond(DRY_RUN_TOKEN, 400, "BadDeviceToken")

    found = _apns_result(runtime, apns_settings)

    assert found.status is Status.OK, found.text()
    assert "BadDeviceToken" in found.text()
    [push] = apns.received
    assert push.token == DRY_RUN_TOKEN
    assert push.headers["apns-topic"] == PASS_TYPE_ID
    # Over a connection presenting the pass certificate, as pushes go.
    assert apns.peer_subjects[-1]["userId"] == PASS_TYPE_ID


@pytest.mark.parametrize(
    ("status", "reason", "words"),
    [
        (400, "TopicDisallowed", "refuses pushes to pass.test.walletpass"),
        (403, "BadCertificate", "refused the certificate (403 BadCertificate)"),
        (403, "BadCertificateEnvironment", "revoked, expired"),
    ],
)
def test_apns_refusing_the_certificate_or_topic_is_an_error(
    runtime, apns, apns_settings, status, reason, words
):
    apns.respond(DRY_RUN_TOKEN, status, reason)

    found = _apns_result(runtime, apns_settings)

    assert found.status is Status.ERROR
    assert words in found.text()
    assert found.facts["answer"] == f"{status} {reason}"


def test_apns_refusing_the_tls_handshake_is_an_error(runtime, apns, apns_settings, chain_settings):
    # A chain the stand-in does not trust, as Apple trusts no development chain.
    settings = chain_settings(apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert))

    found = _apns_result(runtime, settings)

    assert found.status is Status.ERROR
    assert "could not be reached or refused the TLS connection" in found.text()
    assert apns.received == []


def test_apns_out_of_reach_is_an_error(runtime, settings):
    found = _apns_result(runtime, settings.override(apns_url="https://127.0.0.1:9"))

    assert found.status is Status.ERROR
    assert "https://127.0.0.1:9" in found.text()


# ------------------------------------------------------------------ the public URL


@pytest.fixture
def served(runtime) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """walletpass itself, served over HTTP on 127.0.0.1 by a real server."""
    server = make_server("127.0.0.1", 0, create_app(runtime=runtime, start_worker=False))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def test_a_reachable_http_public_url_answers_but_is_a_warning(settings, served):
    found = {f.check: f for f in check_public_url(settings.override(public_url=served))}

    assert found["public_url.reachable"].status is Status.OK
    assert found["public_url.reachable"].facts["answer"] == "200"
    assert found["public_url.https"].status is Status.WARNING
    assert "not HTTPS" in found["public_url.https"].text()


def test_a_public_url_that_leads_elsewhere_is_an_error(settings):
    class NotWalletpass(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), NotWalletpass)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        found = {f.check: f for f in check_public_url(settings.override(public_url=url))}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    assert found["public_url.reachable"].status is Status.ERROR
    assert "answered 404" in found["public_url.reachable"].text()


def test_a_public_url_nobody_answers_is_an_error(settings):
    found = {
        f.check: f for f in check_public_url(settings.override(public_url="http://127.0.0.1:9"))
    }

    assert found["public_url.reachable"].status is Status.ERROR
    assert "did not answer" in found["public_url.reachable"].text()


# ------------------------------------------------------------------ Google


@pytest.fixture(scope="module")
def google_pki(tmp_path_factory):  # type: ignore[no-untyped-def]
    return make_test_pki(tmp_path_factory.mktemp("google-pki"))


@pytest.fixture
def google(google_pki, monkeypatch) -> Iterator[GoogleStandIn]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(google_pki.ca_cert))
    with GoogleStandIn(tls_cert=google_pki.server_cert, tls_key=google_pki.server_key) as g:
        yield g


@pytest.fixture
def google_settings(settings, google, tmp_path):  # type: ignore[no-untyped-def]
    account = make_service_account(tmp_path, google.token_uri)
    return settings.override(
        google_issuer_id=ISSUER,
        google_service_account_file=str(account.path),
        google_api_url=google.api_url,
    )


def test_google_signing_in_and_reading_a_class_is_ok(google, google_settings):
    [found] = check_google(google_settings)

    assert found.status is Status.OK, found.text()
    [call] = google.calls("GET")
    assert call.path.endswith(f"/loyaltyClass/{ISSUER}.walletpass-doctor")
    assert call.headers["authorization"].startswith("Bearer ya29.standin-")


def test_google_refusing_the_service_account_key_is_an_error(google_settings, google_pki):
    other = GoogleStandIn(
        # Knows another key than the service account's: its token endpoint says invalid_grant.
        public_key_pem=make_test_pki(google_pki.directory / "other").client_cert.read_bytes(),
        tls_cert=google_pki.server_cert,
        tls_key=google_pki.server_key,
    )
    with other:
        info = json.loads(Path(google_settings.google_service_account_file).read_text())
        info["token_uri"] = other.token_uri
        Path(google_settings.google_service_account_file).write_text(json.dumps(info))
        [found] = check_google(google_settings.override(google_api_url=other.api_url))

    assert found.status is Status.ERROR
    assert "Google refused the service account" in found.text()
    assert other.calls() == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"google_issuer_id": "BCDE-1234"}, "an issuer id is a number"),
        ({"google_service_account_file": "/nonexistent/sa.json"}, "Cannot read"),
        ({"google_issuer_id": None}, "WALLETPASS_GOOGLE_ISSUER_ID is not set"),
    ],
)
def test_google_settings_that_cannot_work_are_errors_and_call_nothing(
    google, google_settings, change, words
):
    [found] = check_google(google_settings.override(**change))

    assert found.status is Status.ERROR
    assert words in found.text()
    assert google.calls() == []


def test_a_file_that_is_not_a_service_account_key_is_an_error(google, google_settings, tmp_path):
    path = tmp_path / "oauth-client.json"
    path.write_text(json.dumps({"installed": {"client_id": "x"}}))

    [found] = check_google(google_settings.override(google_service_account_file=str(path)))

    assert found.status is Status.ERROR
    assert "is not a service-account key" in found.text()


def test_google_off_is_fine(settings):
    [found] = check_google(settings)
    assert found.status is Status.OK
    assert "off" in found.text()


# ------------------------------------------------------------------ all of them


def test_every_check_against_real_servers(runtime, apns, google, google_settings, served):
    apns.respond(DRY_RUN_TOKEN, 400, "BadDeviceToken")
    settings = google_settings.override(
        apns_url=apns.url, apns_ca_file=str(apns.pki.ca_cert), public_url=served
    )

    found = {f.check: f.status for f in run_checks(with_settings(runtime, settings))}

    assert found == {
        "certificate": Status.OK,
        "pass_type": Status.OK,
        "team": Status.OK,
        "chain": Status.OK,  # a dev chain on an http installation
        "expiry.wwdr": Status.OK,
        "expiry.pass": Status.OK,
        "apns": Status.OK,
        "public_url.https": Status.WARNING,
        "public_url.reachable": Status.OK,
        "google": Status.OK,
    }
