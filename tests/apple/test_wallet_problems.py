"""walletpass.apple.problems: which pass a Wallet log message names, and its pattern."""

from __future__ import annotations

import pytest

from walletpass.apple.problems import apns_pattern, pattern_of, serial_in

GET = (
    "[2026-12-06 10:43:34 +0100] Get pass task (pass type pass.com.shop, serial number "
    "{serial}, if-modified-since Wed, 06 Mar 2026 09:40:57 GMT; with web service url "
    "https://wallet.shop.test/apple) encountered error: {error}"
)


@pytest.mark.parametrize(
    ("message", "serial"),
    [
        (GET.format(serial="A1B2", error="Unexpected response code 401"), "A1B2"),
        ("Server requested update to serial number 'Z-9.8' but the pass was unchanged.", "Z-9.8"),
        ("Invalid data error reading pass pass.com.shop/ABC123. The pass...", "ABC123"),
        ("Web service error for pass.com.shop (https://x.test): Response malformed", None),
    ],
)
def test_serial_in(message: str, serial: str | None) -> None:
    assert serial_in(message) == serial


@pytest.mark.parametrize(
    ("error", "pattern"),
    [
        ("Unexpected response code 401", "unauthorized"),
        ("Unexpected response code 404", "not-found"),
        ("Unexpected response code 503", "server-error"),
        ("Server returned the pass but did not provide a 'last-modified' header", "last-modified"),
        ("Server response was malformed (Missing response data)", "malformed"),
    ],
)
def test_known_get_pass_errors_are_told_apart_despite_the_url(error: str, pattern: str) -> None:
    # Every "Get pass task" message names its web service URL: the error decides.
    assert pattern_of(GET.format(serial="S1", error=error)) == pattern


def test_an_unknown_message_loses_what_varies() -> None:
    one = pattern_of(GET.format(serial="S1", error="Wallet felt strange (code 7)"))
    two = pattern_of(GET.format(serial="S2", error="Wallet felt strange (code 8)"))
    assert one == two
    assert "S1" not in one
    assert "https://" not in one


@pytest.mark.parametrize(
    ("status", "reason", "pattern"),
    [
        (410, "Unregistered", "apns-unregistered"),
        (400, "BadDeviceToken", "apns-bad-token"),
        (400, "TopicDisallowed", "apns-topic"),
        (403, "ExpiredProviderToken", "apns-certificate"),
        (429, "TooManyRequests", "apns-unavailable"),
        (None, None, "apns-unavailable"),
        (413, "PayloadTooLarge", "apns-refused"),
    ],
)
def test_apns_patterns(status: int | None, reason: str | None, pattern: str) -> None:
    assert apns_pattern(status, reason) == pattern


def test_every_pattern_has_an_explanation() -> None:
    from walletpass.admin.problems import CATALOGUE
    from walletpass.apple.problems import APNS_REASONS, KNOWN

    keys = {key for key, _ in KNOWN} | set(APNS_REASONS.values())
    keys |= {"apns-unregistered", "apns-certificate", "apns-unavailable", "apns-refused"}
    assert keys == set(CATALOGUE)
