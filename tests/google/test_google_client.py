"""The REST client against the stand-in over HTTPS: auth, idempotent insert, error mapping."""

from __future__ import annotations

import socket
import threading

import pytest
from googlekit import (  # noqa: F401 - fixtures, registered by name
    ISSUER,
    client_fixture,
    google_fixture,
    google_pki_fixture,
    service_account_fixture,
    settings_fixture,
)

from walletpass.google.client import (
    GoogleNotFound,
    GooglePermanent,
    GoogleQuotaExceeded,
    GoogleTransient,
    GoogleWalletClient,
)

CLASS = {
    "id": f"{ISSUER}.program-coffee-v0",
    "issuerName": "Corner Café",
    "programName": "Coffee Club",
    "programLogo": {"sourceUri": {"uri": "https://wallet.example.test/logo.png"}},
}
OBJECT = {
    "id": f"{ISSUER}.pass-S1",
    "classId": CLASS["id"],
    "state": "ACTIVE",
    "loyaltyPoints": {"label": "Points", "balance": {"int": 10}},
    "textModulesData": [{"id": "a", "header": "A", "body": "a"}],
}


def test_token_from_key_files_token_uri_and_bearer_on_calls(google, client):
    client.insert_or_patch("loyaltyClass", CLASS)
    token_calls = [r for r in google.requests if r.path == "/token"]
    assert len(token_calls) == 1
    assert token_calls[0].body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    call = google.calls("POST", "/loyaltyClass")[0]
    assert call.headers["authorization"].startswith("Bearer ya29.standin-")
    assert call.body["reviewStatus"] == "UNDER_REVIEW"  # classes always carry it


def test_expired_token_is_refreshed(google, client):
    client.insert_or_patch("loyaltyClass", CLASS)
    google.expire_tokens()
    assert client.get("loyaltyClass", CLASS["id"])["id"] == CLASS["id"]
    assert google.token_requests == 2


def test_insert_conflict_becomes_patch_of_the_same_body(google, client):
    client.insert_or_patch("loyaltyClass", CLASS)
    client.insert_or_patch("loyaltyObject", OBJECT)
    changed = {**OBJECT, "loyaltyPoints": {"label": "Points", "balance": {"int": 11}}}
    result = client.insert_or_patch("loyaltyObject", changed)
    assert result["loyaltyPoints"]["balance"] == {"int": 11}
    assert [r.status for r in google.calls("POST", "/loyaltyObject")] == [200, 409]
    patch = google.calls("PATCH", f"/loyaltyObject/{OBJECT['id']}")[0]
    assert patch.body == changed


def test_ensure_class_sends_each_body_once(google, client):
    assert client.ensure_class("loyaltyClass", CLASS) is True
    assert client.ensure_class("loyaltyClass", CLASS) is False
    assert client.class_confirmed(CLASS["id"])
    assert client.ensure_class("loyaltyClass", {**CLASS, "programName": "New"}) is True
    assert len(google.calls("POST", "/loyaltyClass")) == 2


def test_patch_sets_or_clears_notify_preference_and_replaces_arrays(google, client):
    client.insert_or_patch("loyaltyClass", CLASS)
    client.insert_or_patch("loyaltyObject", OBJECT)
    client.patch("loyaltyObject", OBJECT["id"], {"textModulesData": []}, notify=True)
    client.patch(
        "loyaltyObject", OBJECT["id"], {"state": "ACTIVE", "notifyPreference": "X"}, notify=False
    )
    first, second = google.calls("PATCH")
    assert first.body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert "notifyPreference" not in second.body
    assert google.stored("loyaltyObject", OBJECT["id"])["textModulesData"] == []


def test_add_message_returns_the_resource(google, client):
    client.insert_or_patch("loyaltyClass", CLASS)
    client.insert_or_patch("loyaltyObject", OBJECT)
    obj = client.add_message(
        "loyaltyObject", OBJECT["id"], {"id": "m1", "header": "Hi", "body": "b"}
    )
    assert obj["messages"] == [{"id": "m1", "header": "Hi", "body": "b"}]


def test_not_found(client):
    with pytest.raises(GoogleNotFound):
        client.get("loyaltyObject", f"{ISSUER}.nope")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(google, client, status):
    google.fail("/loyaltyClass", status)
    with pytest.raises(GoogleTransient) as info:
        client.insert_or_patch("loyaltyClass", CLASS)
    assert info.value.status == status


def test_429_rate_limit_is_transient_with_retry_after(google, client):
    google.fail(
        "/loyaltyClass",
        429,
        body={"error": {"code": 429, "message": "Rate Limit Exceeded",
                        "errors": [{"reason": "rateLimitExceeded"}]}},
        headers={"Retry-After": "7"},
    )  # fmt: skip
    with pytest.raises(GoogleTransient) as info:
        client.insert_or_patch("loyaltyClass", CLASS)
    assert info.value.retry_after == 7.0


def test_quota_exceeded(google, client):
    google.fail(
        "/loyaltyClass",
        403,
        body={"error": {"code": 403, "message": "Quota exceeded",
                        "errors": [{"reason": "quotaExceeded"}]}},
    )  # fmt: skip
    with pytest.raises(GoogleQuotaExceeded):
        client.insert_or_patch("loyaltyClass", CLASS)


def test_other_4xx_is_permanent_with_googles_message(google, client):
    google.fail(
        "/loyaltyClass",
        403,
        body={"error": {"code": 403, "message": "The caller does not have permission",
                        "errors": [{"reason": "forbidden"}]}},
    )  # fmt: skip
    with pytest.raises(GooglePermanent) as info:
        client.insert_or_patch("loyaltyClass", CLASS)
    assert "The caller does not have permission" in str(info.value)
    # A payload Google's schema refuses comes back as 400 from the stand-in.
    with pytest.raises(GooglePermanent) as info:
        client.insert_or_patch("loyaltyClass", {**CLASS, "programColour": "red"})
    assert info.value.status == 400
    google.violations.clear()  # provoked on purpose


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_transient(settings):
    dead = settings.override(google_api_url=f"https://127.0.0.1:{_closed_port()}/walletobjects/v1")
    with GoogleWalletClient(dead, timeout=(1.0, 1.0)) as c, pytest.raises(GoogleTransient):
        c.get("loyaltyClass", CLASS["id"])


def test_token_endpoint_unreachable_is_transient(settings, tmp_path):
    from standins.google_server import make_service_account

    sa = make_service_account(tmp_path, f"https://127.0.0.1:{_closed_port()}/token")
    cfg = settings.override(google_service_account_file=str(sa.path))
    with GoogleWalletClient(cfg, timeout=(1.0, 1.0)) as c, pytest.raises(GoogleTransient):
        c.get("loyaltyClass", CLASS["id"])


def test_read_timeout_is_transient(settings):
    # A server that accepts and never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        try:
            port = listener.getsockname()[1]
            cfg = settings.override(google_api_url=f"http://127.0.0.1:{port}/walletobjects/v1")
            with GoogleWalletClient(cfg, timeout=(1.0, 0.3)) as c:
                with pytest.raises(GoogleTransient) as info:
                    c.get("loyaltyClass", CLASS["id"])
                assert "timeout" in str(info.value)
        finally:
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()
