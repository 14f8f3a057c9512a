"""Just enough DER to read a pkpass signature (a CMS SignedData) in-process.

``cryptography`` builds PKCS#7 signatures but does not verify them, and running
``openssl cms -verify`` per pass costs a process; a pkpass signature is small and its
shape fixed (RFC 5652), so walking its TLVs is cheap and exact.
"""

from __future__ import annotations

from dataclasses import dataclass


class DerError(ValueError):
    """The bytes are not the DER this reader expects."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    raw: bytes  # the whole element: tag, length and content
    content: bytes

    def children(self) -> list[Tlv]:
        return parse_all(self.content)


def parse_one(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """The element at ``pos`` and the position after it."""
    if pos + 2 > len(data):
        raise DerError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not used in CMS")
    first = data[pos + 1]
    at = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        # BER's indefinite length: not DER, and Wallet's verifier wants DER.
        raise DerError("indefinite length (BER, not DER)")
    else:
        count = first & 0x7F
        if count > 4 or at + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    end = at + length
    if end > len(data):
        raise DerError("element runs past the end")
    return Tlv(tag, data[pos:end], data[at:end]), end


def parse_all(data: bytes) -> list[Tlv]:
    out = []
    pos = 0
    while pos < len(data):
        tlv, pos = parse_one(data, pos)
        out.append(tlv)
    return out


def oid(tlv: Tlv) -> str:
    """Dotted form of an OBJECT IDENTIFIER."""
    if tlv.tag != 0x06 or not tlv.content:
        raise DerError("expected an OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in tlv.content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])
