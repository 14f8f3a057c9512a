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
# The per-pass entries are stored too: they are a few KiB, and each deflate runs right
# after the RSA signature with cold caches (~50-70 us each, measured by bench_sign).
_STORED_NAMES = frozenset({SIGNATURE, MANIFEST, PASS_JSON})


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
    try:
        # Keyed in the callers' order (a template's files come in the same order every
        # time), so a hit sorts nothing; _bundle sorts on a miss.
        bundle = _bundle(tuple(files.items()), tuple(hashes.items()))
    except TypeError:  # a hash value that cannot key a cache; _check_bundle tells what
        bundle = None
    if bundle is None:
        bundle = _check_bundle(tuple(sorted(files.items())), hashes)
        manifest = manifest_bytes({**hashes, PASS_JSON: sha1_hex(pass_json)})
    else:
        # The template's part of manifest.json is serialized once per set of hashes;
        # pass.json's digest (hex: nothing to escape) goes into its sorted place.
        digest = hashlib.sha1(pass_json, usedforsecurity=False).hexdigest().encode("ascii")
        manifest = b"".join((bundle.manifest_head, digest, bundle.manifest_tail))
    signature = identity.sign(manifest)
    return PkpassParts(
        pass_json=pass_json,
        manifest=manifest,
        signature=signature,
        zip_bytes=_zip(pass_json, manifest, signature, bundle),
    )


@dataclass(frozen=True)
class _Bundle:
    """What a pkpass of a given set of files shares with every other one of that set."""

    local: bytes  # the files' local headers and data, from offset 0
    central: bytes  # their central-directory records
    count: int  # number of files
    # manifest.json of the files' hashes, around pass.json's digest: b'..."pass.json":"'
    # and b'",...}'; empty when built without the splice (see _bundle).
    manifest_head: bytes = b""
    manifest_tail: bytes = b""


def _check_bundle(
    static_items: tuple[tuple[str, bytes], ...], hashes: Mapping[str, object]
) -> _Bundle:
    """The files' ZIP block, after checking ``hashes`` covers exactly them and their names.

    :raise ValueError: before anything is signed.
    """
    if set(dict(static_items)) != set(hashes):
        names = {name for name, _ in static_items}
        missing = sorted(names - set(hashes))
        extra = sorted(set(hashes) - names)
        raise ValueError(f"hashes do not match files: unhashed {missing}, no such file {extra}")
    local, central = _static_block(static_items)
    return _Bundle(local, central, len(static_items))


_SPLICE_MARK = "\0"  # a value no real digest has, so its spot in the JSON is unambiguous
_SPLICE_SEEN = b'"pass.json":"\\u0000"'


@functools.lru_cache(maxsize=128)
def _bundle(
    file_items: tuple[tuple[str, bytes], ...], hash_items: tuple[tuple[str, str], ...]
) -> _Bundle | None:
    """:func:`_check_bundle` plus the manifest around pass.json's digest, cached per set of
    files and hashes (exceptions are not cached, so a bad set is re-checked every call).

    None when the hashes do not serialize with one clear spot for pass.json's digest (not
    SHA-1 hex strings); the caller then takes the plain path.
    """
    bundle = _check_bundle(tuple(sorted(file_items)), dict(hash_items))
    hashes = dict(hash_items)
    hashes[PASS_JSON] = _SPLICE_MARK
    full = manifest_bytes(hashes)
    if full.count(_SPLICE_SEEN) != 1:
        return None
    head, _, tail = full.partition(_SPLICE_SEEN)
    return _Bundle(bundle.local, bundle.central, bundle.count, head + b'"pass.json":"', b'"' + tail)


# The ZIP block of a bundle's files, for walletpass.passes.stored to keep between fetches.
FilesBlock = _Bundle


def files_block(files: Mapping[str, bytes]) -> FilesBlock:
    """The ZIP block of every bundle file but pass.json, manifest.json and signature."""
    return _check_bundle(tuple(sorted(files.items())), dict(files))


def zip_signed(pass_json: bytes, manifest: bytes, signature: bytes, block: FilesBlock) -> bytes:
    """The .pkpass of signed parts after a :func:`files_block` (nothing is checked)."""
    return _zip(pass_json, manifest, signature, block)


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
    static_items = tuple(sorted(files.items()))
    return _zip(pass_json, manifest, signature, _check_bundle(static_items, dict(files)))


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
    if name.lower().endswith(_STORED_SUFFIXES) or name in _STORED_NAMES:
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
    crc = zlib.crc32(data)
    fields = (_VERSION, flags, method, _DOS_TIME, _DOS_DATE, crc, len(packed), len(data))
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


# pass.json, manifest.json and signature follow the cached block. Their headers are
# written inline, with the constant fields fixed here: per pass this is three CRCs, one
# deflate and one join, which matters because it runs right after the RSA signature, with
# cold caches, where every extra call costs several times what it does in a tight loop.
_PASS_JSON_NAME = PASS_JSON.encode("ascii")
_MANIFEST_NAME = MANIFEST.encode("ascii")
_SIGNATURE_NAME = SIGNATURE.encode("ascii")
_TAIL_CENTRAL_SIZE = 3 * _CENTRAL.size + len(_PASS_JSON_NAME + _MANIFEST_NAME + _SIGNATURE_NAME)
_STORED = zipfile.ZIP_STORED
_crc32 = zlib.crc32


def _zip(pass_json: bytes, manifest: bytes, signature: bytes, bundle: _Bundle) -> bytes:
    method, packed = _compress(PASS_JSON, pass_json)
    crc_pass = _crc32(pass_json)
    crc_manifest = _crc32(manifest)
    crc_signature = _crc32(signature)
    at_pass = len(bundle.local)
    at_manifest = at_pass + _LOCAL.size + len(_PASS_JSON_NAME) + len(packed)
    at_signature = at_manifest + _LOCAL.size + len(_MANIFEST_NAME) + len(manifest)
    at_directory = at_signature + _LOCAL.size + len(_SIGNATURE_NAME) + len(signature)
    directory_size = len(bundle.central) + _TAIL_CENTRAL_SIZE
    count = bundle.count + 3
    if at_directory > _MAX32 or len(pass_json) > _MAX32 or count > 0xFFFF:
        raise ValueError("pass bundle does not fit a ZIP without zip64")
    # Flags 0: the three names are ASCII.
    return b"".join(
        (
            bundle.local,
            _LOCAL.pack(0x04034B50, _VERSION, 0, method, _DOS_TIME, _DOS_DATE, crc_pass,
                        len(packed), len(pass_json), len(_PASS_JSON_NAME), 0),
            _PASS_JSON_NAME,
            packed,
            _LOCAL.pack(0x04034B50, _VERSION, 0, _STORED, _DOS_TIME, _DOS_DATE, crc_manifest,
                        len(manifest), len(manifest), len(_MANIFEST_NAME), 0),
            _MANIFEST_NAME,
            manifest,
            _LOCAL.pack(0x04034B50, _VERSION, 0, _STORED, _DOS_TIME, _DOS_DATE, crc_signature,
                        len(signature), len(signature), len(_SIGNATURE_NAME), 0),
            _SIGNATURE_NAME,
            signature,
            bundle.central,
            _CENTRAL.pack(0x02014B50, _MADE_BY, _VERSION, 0, method, _DOS_TIME, _DOS_DATE,
                          crc_pass, len(packed), len(pass_json), len(_PASS_JSON_NAME),
                          0, 0, 0, 0, _EXTERNAL_ATTR, at_pass),
            _PASS_JSON_NAME,
            _CENTRAL.pack(0x02014B50, _MADE_BY, _VERSION, 0, _STORED, _DOS_TIME, _DOS_DATE,
                          crc_manifest, len(manifest), len(manifest), len(_MANIFEST_NAME),
                          0, 0, 0, 0, _EXTERNAL_ATTR, at_manifest),
            _MANIFEST_NAME,
            _CENTRAL.pack(0x02014B50, _MADE_BY, _VERSION, 0, _STORED, _DOS_TIME, _DOS_DATE,
                          crc_signature, len(signature), len(signature), len(_SIGNATURE_NAME),
                          0, 0, 0, 0, _EXTERNAL_ATTR, at_signature),
            _SIGNATURE_NAME,
            _END.pack(0x06054B50, 0, 0, count, count, directory_size, at_directory, 0),
        )
    )  # fmt: skip


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
