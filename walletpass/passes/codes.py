"""Serial numbers, authentication tokens and barcode payloads: random, never sequential."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L, U: a code read aloud or typed at the till survives the usual mix-ups.
_TYPABLE = "ABCDEFGHJKMNPQRSTVWXYZ23456789"


def new_serial() -> str:
    return secrets.token_hex(12)


def new_auth_token() -> str:
    # Apple asks for >= 16 characters; 43 URL-safe characters carry 256 bits.
    return secrets.token_urlsafe(32)


def new_barcode() -> str:
    """An opaque, unguessable till code (~78 bits) that staff can type: XXXX-XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(_TYPABLE) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def normalize_barcode(code: str) -> str:
    """What a scanner or a person typed, in the stored form (case, spaces, dashes forgiven)."""
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    if len(raw) != 16:
        return code.strip()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def new_referral_code() -> str:
    return "".join(secrets.choice(_TYPABLE) for _ in range(8))
