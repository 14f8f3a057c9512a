"""Verify Google Wallet save/delete callbacks: the ECv2SigningOnly envelope, by hand.

Python Tink has no PaymentMethodToken support, so this follows specs/google-wallet.md §6
step by step with ``cryptography``: a Google root key signs an intermediate key, the
intermediate key signs the message, both signatures over length-value encoded strings.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

PROTOCOL = "ECv2SigningOnly"
KEYS_TIMEOUT = (5.0, 10.0)
# When Google's key list gives no expiry, or is empty, look again after this long.
DEFAULT_KEYS_TTL_MS = 60 * 60 * 1000


class CallbackError(ValueError):
    """The envelope is malformed, forged or stale. ``str()`` is a short reason for the 401."""


class KeysUnavailable(RuntimeError):
    """Google's root keys could not be fetched; the caller should answer 503 so Google retries."""


class RootKeys(Protocol):
    def keys(self, now_ms: int, *, refresh: bool = False) -> list[ec.EllipticCurvePublicKey]: ...


def lv(*parts: str | bytes) -> bytes:
    """Length-value encoding: per part, 4-byte little-endian length then the UTF-8 bytes."""
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        out += len(data).to_bytes(4, "little") + data
    return bytes(out)


def load_public_key(b64_der: str) -> ec.EllipticCurvePublicKey:
    """A base64 DER SubjectPublicKeyInfo, which must be an EC P-256 key."""
    key = serialization.load_der_public_key(base64.b64decode(b64_der))
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise CallbackError("key is not EC P-256")
    return key


def _verify(key: ec.EllipticCurvePublicKey, signature_b64: str, data: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def _ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def verify_callback(
    body: str,
    *,
    issuer_id: str,
    sender: str,
    keys_provider: RootKeys,
    now: datetime,
) -> dict[str, Any]:
    """Verify a callback body and return the parsed ``signedMessage``.

    :param body: the raw request body; the signed strings inside are verified byte for byte.
    :param issuer_id: our numeric issuer id, the "recipient" of the message signature.
    :param sender: "GooglePayPasses" (verified against real traffic, spec §6).
    :raise CallbackError: anything wrong; nothing from the message may be trusted then.
    :raise KeysUnavailable: Google's key list could not be fetched.
    """
    now_ms = _ms(now)
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise CallbackError("body is not JSON") from exc
    if not isinstance(envelope, dict) or envelope.get("protocolVersion") != PROTOCOL:
        raise CallbackError("unsupported protocolVersion")
    intermediate = envelope.get("intermediateSigningKey")
    signed_message = envelope.get("signedMessage")
    signature = envelope.get("signature")
    if not (
        isinstance(intermediate, dict)
        and isinstance(intermediate.get("signedKey"), str)
        and isinstance(intermediate.get("signatures"), list)
        and isinstance(signed_message, str)
        and isinstance(signature, str)
    ):
        raise CallbackError("malformed envelope")
    signed_key: str = intermediate["signedKey"]
    signatures = [s for s in intermediate["signatures"] if isinstance(s, str)]

    # 1. Any root key verifies any of the intermediate key's signatures.
    key_data = lv(sender, PROTOCOL, signed_key)

    def root_ok(refresh: bool) -> bool:
        return any(
            _verify(root, sig, key_data)
            for root in keys_provider.keys(now_ms, refresh=refresh)
            for sig in signatures
        )

    # A failure with cached keys may be a key rotation: look once more with fresh keys.
    if not (root_ok(False) or root_ok(True)):
        raise CallbackError("intermediate key signature does not verify")

    # 2. The intermediate key has not expired.
    try:
        key_info = json.loads(signed_key)
        expiration = int(key_info["keyExpiration"])
        intermediate_key = load_public_key(key_info["keyValue"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise CallbackError("malformed intermediate key") from exc
    if expiration <= now_ms:
        raise CallbackError("intermediate key expired")

    # 3. The message signature, with the intermediate key, names us as recipient.
    if not _verify(intermediate_key, signature, lv(sender, issuer_id, PROTOCOL, signed_message)):
        raise CallbackError("message signature does not verify")

    # 4. Only now parse the message; it must not have expired.
    try:
        message = json.loads(signed_message)
        exp = int(message["expTimeMillis"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CallbackError("malformed signedMessage") from exc
    if not isinstance(message, dict) or exp <= now_ms:
        raise CallbackError("message expired")
    return message


@dataclass
class _Cached:
    keys: list[ec.EllipticCurvePublicKey]
    valid_until_ms: int


class KeysProvider:
    """Google's root signing keys, fetched from ``settings.google_keys_url``.

    Keeps only ECv2SigningOnly keys that have not expired and caches them until the earliest
    keyExpiration among them. A forced refresh (after a failed verification) is throttled so
    forged callbacks cannot make us hammer Google.
    """

    MIN_REFRESH_INTERVAL_MS = 60_000

    def __init__(self, url: str, *, timeout: tuple[float, float] = KEYS_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._cached: _Cached | None = None
        self._fetched_at_ms: int | None = None
        self._lock = threading.Lock()

    def keys(self, now_ms: int, *, refresh: bool = False) -> list[ec.EllipticCurvePublicKey]:
        with self._lock:
            cached = self._cached
            fresh = cached is not None and now_ms < cached.valid_until_ms
            throttled = (
                self._fetched_at_ms is not None
                and now_ms - self._fetched_at_ms < self.MIN_REFRESH_INTERVAL_MS
            )
            if cached is not None and fresh and (not refresh or throttled):
                return cached.keys
            self._cached = self._fetch(now_ms)
            self._fetched_at_ms = now_ms
            return self._cached.keys

    def _fetch(self, now_ms: int) -> _Cached:
        try:
            response = requests.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise KeysUnavailable(f"cannot fetch Google keys from {self.url}: {exc}") from exc
        keys: list[ec.EllipticCurvePublicKey] = []
        expirations: list[int] = []
        for entry in data.get("keys", []) if isinstance(data, dict) else []:
            if not isinstance(entry, dict) or entry.get("protocolVersion") != PROTOCOL:
                continue
            try:
                expiration = int(entry["keyExpiration"]) if "keyExpiration" in entry else None
                key = load_public_key(entry["keyValue"])
            except (KeyError, ValueError, TypeError, binascii.Error, CallbackError):
                log.warning("skipping unusable Google root key")
                continue
            if expiration is not None:
                if expiration <= now_ms:
                    continue
                expirations.append(expiration)
            keys.append(key)
        valid_until = min(expirations) if expirations else now_ms + DEFAULT_KEYS_TTL_MS
        return _Cached(keys, valid_until)
