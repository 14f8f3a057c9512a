"""Secret helpers: sealing secrets at rest, random tokens, constant-time comparison."""

from __future__ import annotations

import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Blob layout: version byte || 12-byte nonce || AES-256-GCM ciphertext+tag. The version
# byte lets the format (or the KDF) change later without guessing what an old blob is.
_VERSION_1 = 1
_NONCE_LEN = 12
# A fixed salt/info pair binds derived keys to this purpose, so the same
# WALLETPASS_SECRET_KEY used elsewhere (e.g. session cookies) never yields this key.
_HKDF_SALT = b"walletpass.security.seal"
_HKDF_INFO = b"walletpass seal v1 aes-256-gcm"


class SealError(ValueError):
    """A sealed blob could not be opened: wrong secret key, corruption or unknown format."""


def _derive_key(secret_key: str) -> bytes:
    if not secret_key:
        raise SealError("WALLETPASS_SECRET_KEY is not set; it is needed to seal secrets")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return hkdf.derive(secret_key.encode("utf-8"))


def seal(secret_key: str, data: bytes) -> bytes:
    """Encrypt and authenticate ``data`` with a key derived from ``secret_key``.

    :raise SealError: when ``secret_key`` is empty.
    """
    nonce = os.urandom(_NONCE_LEN)
    header = bytes([_VERSION_1])
    # The header is authenticated too, so a flipped version byte is detected.
    return header + nonce + AESGCM(_derive_key(secret_key)).encrypt(nonce, data, header)


def unseal(secret_key: str, blob: bytes) -> bytes:
    """Open a blob made by :func:`seal`.

    :raise SealError: on a wrong key, a tampered or truncated blob, or an unknown version.
    """
    if len(blob) < 1 + _NONCE_LEN + 16:
        raise SealError("sealed data is truncated")
    if blob[0] != _VERSION_1:
        raise SealError(f"unknown sealed-data version {blob[0]}")
    header, nonce, ciphertext = blob[:1], blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :]
    try:
        return AESGCM(_derive_key(secret_key)).decrypt(nonce, ciphertext, header)
    except InvalidTag:
        raise SealError(
            "cannot unseal: wrong WALLETPASS_SECRET_KEY or the data was modified"
        ) from None


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token carrying ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking, through timing, how long a matching prefix is."""
    if isinstance(a, str):
        a = a.encode("utf-8")
    if isinstance(b, str):
        b = b.encode("utf-8")
    return hmac.compare_digest(a, b)
