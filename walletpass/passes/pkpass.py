"""Build .pkpass bundles: manifest, signature and a reproducible ZIP.

Signing is the expensive step, so it is split from zipping: the service keeps
pass.json, manifest.json and signature per pass version and re-zips them on each fetch
with :func:`assemble_pkpass`, which never signs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from walletpass.passes.signing import CertificateError, SigningIdentity

PKPASS_MIME_TYPE = "application/vnd.apple.pkpass"

PASS_JSON = "pass.json"  # noqa: S105 (a file name, not a password)
MANIFEST = "manifest.json"
SIGNATURE = "signature"
_RESERVED = frozenset({PASS_JSON, MANIFEST, SIGNATURE})

# A fixed timestamp makes the same parts give the same bytes (ETags, caching, tests).
# 1980-01-01 is the earliest date a ZIP entry can carry.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
# Already-compressed formats gain nothing from deflate; storing them saves CPU per fetch.
_STORED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class PkpassParts:
    """A signed pass: the exact bytes that were hashed and signed, and the ZIP of them all."""

    pass_json: bytes
    manifest: bytes
    signature: bytes
    zip_bytes: bytes


def sha1_hex(data: bytes) -> str:
    # SHA-1 is what Wallet's manifest format specifies; it is not used for security here
    # (the manifest itself is signed with SHA-256).
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def manifest_bytes(hashes: Mapping[str, str]) -> bytes:
    """manifest.json: compact JSON with sorted keys, so equal hashes give equal bytes."""
    return json.dumps(dict(hashes), separators=(",", ":"), sort_keys=True).encode("ascii")


def _check_names(names: Iterable[str]) -> None:
    for name in names:
        if name in _RESERVED:
            raise ValueError(f"{name} is written by the builder; do not pass it in files")
        parts = name.split("/")
        if (
            not name
            or name.startswith("/")
            or "\\" in name
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise ValueError(f"bad file name in pass bundle: {name!r}")
        # Wallet rejects a pass with files the manifest does not explain; these sneak in
        # from macOS Finder copies of template folders.
        if parts[-1] == ".DS_Store" or parts[0] == "__MACOSX":
            raise ValueError(f"refusing to bundle {name!r} (a macOS artefact)")


def build_pkpass(
    pass_json: bytes,
    files: Mapping[str, bytes],
    hashes: Mapping[str, str],
    identity: Signer,
) -> PkpassParts:
    """Hash, sign and zip a pass.

    :param pass_json: the serialized pass.json, hashed and zipped exactly as given.
    :param files: every other file of the bundle (images, ``*.lproj/pass.strings``).
    :param hashes: SHA-1 hex of each of ``files`` (templates cache the static ones).
    :param identity: a :class:`SigningIdentity` (anything with ``sign(bytes) -> bytes``).
    :raise ValueError: when ``hashes`` does not describe exactly ``files``.
    """
    if set(files) != set(hashes):
        missing = sorted(set(files) - set(hashes))
        extra = sorted(set(hashes) - set(files))
        raise ValueError(f"hashes do not match files: unhashed {missing}, no such file {extra}")
    # Checks the file names (once per distinct set of files) before anything is signed.
    static_items = tuple(sorted(files.items()))
    _static_block(static_items)
    all_hashes = dict(hashes)
    all_hashes[PASS_JSON] = sha1_hex(pass_json)
    manifest = manifest_bytes(all_hashes)
    signature = identity.sign(manifest)
    return PkpassParts(
        pass_json=pass_json,
        manifest=manifest,
        signature=signature,
        zip_bytes=_zip(pass_json, manifest, signature, static_items),
    )


def assemble_pkpass(
    pass_json: bytes, manifest: bytes, signature: bytes, files: Mapping[str, bytes]
) -> bytes:
    """Zip already-signed parts (no signing); equal to :func:`build_pkpass`'s ``zip_bytes``.

    :raise ValueError: when the manifest does not list exactly pass.json and ``files``
        (e.g. a template image was added since the pass was signed), or pass.json changed.
    """
    try:
        listed = json.loads(manifest)
    except ValueError:
        raise ValueError("manifest.json is not valid JSON") from None
    expected = set(files) | {PASS_JSON}
    if not isinstance(listed, dict) or set(listed) != expected:
        raise ValueError(
            "cached manifest does not match the bundle files; re-sign the pass "
            f"(manifest only: {sorted(set(listed) - expected)}, "
            f"files only: {sorted(expected - set(listed))})"
        )
    if listed[PASS_JSON] != sha1_hex(pass_json):
        raise ValueError("cached manifest does not match pass.json; re-sign the pass")
    return _zip(pass_json, manifest, signature, tuple(sorted(files.items())))


# ZIP writing. zipfile.ZipFile costs about as much as the RSA signature itself for a
# dozen entries (measured: ~1.2 ms per pass, mostly per-entry Python overhead and CRCs of
# the same images every time). The entries are simple (no zip64, no encryption, sizes known
# up front), so they are written directly. The template's files come first: their local
# entries and central-directory records do not depend on the pass, so that whole block is
# built once per distinct set of files and cached. Only pass.json, manifest.json and the
# signature, which follow it, are encoded per pass.
_DOS_TIME = 0  # 00:00:00
_DOS_DATE = ((_ZIP_DATE_TIME[0] - 1980) << 9) | (_ZIP_DATE_TIME[1] << 5) | _ZIP_DATE_TIME[2]
_VERSION = 20  # 2.0: deflate
_MADE_BY = (3 << 8) | _VERSION  # Unix, so external_attr carries the file mode
_EXTERNAL_ATTR = 0o100644 << 16  # a regular file, rw-r--r--
_UTF8_FLAG = 0x800
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_MAX32 = 0xFFFFFFFF


def _compress(name: str, data: bytes) -> tuple[int, bytes]:
    if name.lower().endswith(_STORED_SUFFIXES) or name == SIGNATURE:
        return zipfile.ZIP_STORED, data
    # Raw deflate (negative wbits: no zlib header, as ZIP wants) with a 4 KiB window and
    # memLevel 4: the text files are a few KiB, so this compresses them as well as the
    # defaults, while the default state (~256 KiB, allocated and zeroed per call) cost
    # ~100 us per file, measured.
    co = zlib.compressobj(6, zlib.DEFLATED, -12, 4)
    return zipfile.ZIP_DEFLATED, co.compress(data) + co.flush()


def _entry(name: str, data: bytes, offset: int) -> tuple[bytes, bytes]:
    """(local header + data, central directory record) of one entry at ``offset``."""
    method, packed = _compress(name, data)
    encoded = name.encode("utf-8")
    flags = 0 if encoded.isascii() else _UTF8_FLAG
    if len(data) > _MAX32 or len(packed) > _MAX32 or offset > _MAX32:
        raise ValueError(f"{name} does not fit a ZIP without zip64")
    fields = (_VERSION, flags, method, _DOS_TIME, _DOS_DATE, zlib.crc32(data), len(packed))
    fields += (len(data),)
    local = _LOCAL.pack(0x04034B50, *fields, len(encoded), 0) + encoded + packed
    central = _CENTRAL.pack(
        0x02014B50, _MADE_BY, *fields, len(encoded), 0, 0, 0, 0, _EXTERNAL_ATTR, offset
    )
    return local, central + encoded


@functools.lru_cache(maxsize=128)
def _static_block(items: tuple[tuple[str, bytes], ...]) -> tuple[bytes, bytes]:
    # Keyed on the (name, bytes) pairs: a template's files are the same bytes objects on
    # every call, and Python caches a bytes object's hash, so a hit hashes no image data.
    # A bad name raises, and exceptions are not cached, so every call re-checks it.
    _check_names(name for name, _ in items)
    locals_: list[bytes] = []
    centrals: list[bytes] = []
    offset = 0
    for name, data in items:
        local, central = _entry(name, data, offset)
        locals_.append(local)
        centrals.append(central)
        offset += len(local)
    return b"".join(locals_), b"".join(centrals)


def _zip(
    pass_json: bytes,
    manifest: bytes,
    signature: bytes,
    static_items: tuple[tuple[str, bytes], ...],
) -> bytes:
    static_local, static_central = _static_block(static_items)
    chunks = [static_local]
    centrals = [static_central]
    offset = len(static_local)
    for name, data in ((PASS_JSON, pass_json), (MANIFEST, manifest), (SIGNATURE, signature)):
        local, central = _entry(name, data, offset)
        chunks.append(local)
        centrals.append(central)
        offset += len(local)
    directory = b"".join(centrals)
    count = len(static_items) + 3
    if offset > _MAX32 or count > 0xFFFF:
        raise ValueError("pass bundle does not fit a ZIP without zip64")
    chunks.append(directory)
    chunks.append(_END.pack(0x06054B50, 0, 0, count, count, len(directory), offset, 0))
    return b"".join(chunks)


def check_pass_json_matches(identity: SigningIdentity, pass_json: Mapping[str, Any]) -> None:
    """Refuse a pass.json whose type or team differs from the signing certificate.

    Wallet would reject it with "The passTypeIdentifier or teamIdentifier provided may not
    match your certificate"; better to fail here with both values.

    :raise CertificateError: on a mismatch.
    """
    got_type = pass_json.get("passTypeIdentifier")
    if got_type != identity.pass_type_id:
        raise CertificateError(
            f"pass.json passTypeIdentifier is {got_type!r} but the signing certificate is "
            f"for {identity.pass_type_id!r} (check WALLETPASS_PASS_TYPE_ID)"
        )
    got_team = pass_json.get("teamIdentifier")
    if got_team != identity.team_id:
        raise CertificateError(
            f"pass.json teamIdentifier is {got_team!r} but the signing certificate's team "
            f"is {identity.team_id!r} (check WALLETPASS_TEAM_ID)"
        )
