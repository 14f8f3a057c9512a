"""seal/unseal, random tokens and constant-time comparison."""

from __future__ import annotations

import base64

import pytest

from walletpass.security import (
    SealError,
    constant_time_equals,
    random_token,
    seal,
    unseal,
)

SECRET = "a-long-random-secret-key-for-tests"


def test_seal_round_trip():
    data = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"
    blob = seal(SECRET, data)
    assert unseal(SECRET, blob) == data
    assert data not in blob
    assert blob[0] == 1  # version byte


def test_seal_empty_payload_round_trips():
    assert unseal(SECRET, seal(SECRET, b"")) == b""


def test_seal_uses_a_fresh_nonce_each_time():
    assert seal(SECRET, b"same") != seal(SECRET, b"same")


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_unseal_detects_any_flipped_byte(position):
    blob = bytearray(seal(SECRET, b"payload"))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        unseal(SECRET, bytes(blob))


def test_unseal_with_the_wrong_key_fails():
    blob = seal(SECRET, b"payload")
    with pytest.raises(SealError, match="wrong WALLETPASS_SECRET_KEY"):
        unseal(SECRET + "x", blob)


def test_unseal_rejects_truncated_and_unknown_versions():
    blob = seal(SECRET, b"payload")
    with pytest.raises(SealError, match="truncated"):
        unseal(SECRET, blob[:20])
    with pytest.raises(SealError, match="version"):
        unseal(SECRET, b"\x02" + blob[1:])


def test_seal_refuses_an_empty_secret():
    with pytest.raises(SealError, match="WALLETPASS_SECRET_KEY"):
        seal("", b"data")


def test_random_token_is_url_safe_and_sized():
    token = random_token(24)
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == 24
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert random_token(24) != token
    assert len(random_token()) >= 16


def test_constant_time_equals_accepts_str_and_bytes():
    assert constant_time_equals("token", "token")
    assert constant_time_equals("token", b"token")
    assert constant_time_equals(b"t\xc3\xa9", "té")
    assert not constant_time_equals("token", "tokem")
    assert not constant_time_equals("token", "token2")
    assert not constant_time_equals("", "x")
