"""A fetch answered from what was kept when the pass's version was signed.

After a push every phone fetches its pass at once, so the fetch must cost about what
serving a file does. When a version is signed, the pass row keeps pass.json, manifest.json
and the signature (about 4.5 KB), the digest of the bundle's other files
(``signed_files``) and the moment the clock may change the card (``signed_until``). The
files themselves (the template's images, the merchant's logo, a stamp card's strip) are
shared by many passes: their ZIP block is kept in this process's memory under that digest
(:func:`keep_block`). A fetch of the signed version is then one indexed read, the token
check and a ZIP of the kept parts after the cached block (:func:`answer`): no rendering,
no signing, no write.

Anything that changes what a card shows bumps the version, except the clock, which
``signed_until`` covers, and the installation's configuration or code, which the digest
covers: it includes :func:`render_context`, so a process configured otherwise never finds
another's block and renders the pass again (re-signing only if pass.json differs).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from walletpass.config import Settings
from walletpass.driversql import DriverStatement
from walletpass.passes import pkpass
from walletpass.passes.models import Pass

# Distinct file sets a process keeps: each template, each merchant's logo and strip, each
# stamp count of each stamp card; a block is the size of its images (20-100 KB).
BLOCKS_KEPT = 512


@dataclass(frozen=True)
class Kept:
    """What a pass row keeps of its signed version (the ``signed_*`` columns)."""

    version: int
    pass_json: bytes
    manifest: bytes
    signature: bytes
    files: str
    until: datetime | None


def render_context(settings: Settings, template_pass_json: Mapping[str, Any]) -> bytes:
    """Everything besides a pass's variables and files that its pass.json depends on:
    the code's version, the configuration and the template's pass.json."""
    template = json.dumps(template_pass_json, sort_keys=True, separators=(",", ":"))
    return _installation(settings) + b"\0" + template.encode()


@functools.lru_cache(maxsize=16)
def _installation(settings: Settings) -> bytes:
    try:
        version = importlib.metadata.version("walletpass")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        version = "unknown"
    # The settings a card's rendering reads (walletpass.cards.variables, build_bundle), and
    # no others: the web processes and the worker that builds before it pushes must agree.
    described = repr([getattr(settings, name) for name in _RENDERING_SETTINGS])
    return f"{version}\0{described}".encode()


_RENDERING_SETTINGS = ("public_url", "team_id", "pass_type_id", "templates_dir", "home")


def files_digest(context: bytes, hashes: Mapping[str, str]) -> str:
    """The ``signed_files`` of a bundle of these files (name to SHA-1) in this context."""
    digest = hashlib.sha256(context)
    for name in sorted(hashes):
        digest.update(b"\0%s\0%s" % (name.encode(), hashes[name].encode()))
    return digest.hexdigest()


class _Blocks:
    """Least recently used ZIP blocks by files digest, safe across request threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        # By files digest: the block, and the installation it was rendered under (a
        # digest says it, but two configurations may share one process: the tests').
        self._blocks: OrderedDict[str, tuple[bytes, pkpass.FilesBlock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, pkpass.FilesBlock] | None:
        with self._lock:
            found = self._blocks.get(key)
            if found is not None:
                self._blocks.move_to_end(key)
            return found

    def put(self, key: str, installation: bytes, block: pkpass.FilesBlock) -> None:
        with self._lock:
            self._blocks[key] = (installation, block)
            self._blocks.move_to_end(key)
            while len(self._blocks) > self._size:
                self._blocks.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()


_BLOCKS = _Blocks(BLOCKS_KEPT)


def keep_block(settings: Settings, key: str, files: Mapping[str, bytes]) -> None:
    """Remember the ZIP block of ``files`` (every bundle file but the signed three)."""
    if _BLOCKS.get(key) is None:
        _BLOCKS.put(key, _installation(settings), pkpass.files_block(files))


def forget_blocks() -> None:
    """Drop every kept block (tests; a template edited in place is re-read on demand)."""
    _BLOCKS.clear()


# The fetch's one read: the token, the dates and the kept parts, by the pass's unique
# serial, on the driver's cursor (walletpass.driversql). Through the ORM the same read
# cost 4 of a fetch's ~10 statements' worth of Python: building and caching the
# statement, the execution context and the row.
_PASSES = Pass.__table__.c
_FETCH = DriverStatement(
    select(
        _PASSES.id,
        _PASSES.merchant_id,
        _PASSES.auth_token,
        _PASSES.version,
        _PASSES.modified_at,
        _PASSES.signed_version,
        _PASSES.signed_files,
        _PASSES.signed_until,
        _PASSES.signed_pass_json,
        _PASSES.signed_manifest,
        _PASSES.signature,
    ).where(
        _PASSES.serial == bindparam("serial"), _PASSES.pass_type_id == bindparam("pass_type_id")
    )
)


def fetch_row(conn: Connection, pass_type_id: str, serial: str) -> Any | None:
    """The columns a fetch reads of the pass (by key), or None if there is no such pass.
    Every merchant's passes: the serial and its token say whose it is."""
    rows = _FETCH.rows(conn, {"serial": serial, "pass_type_id": pass_type_id})
    return rows[0] if rows else None


def answer(row: Any, now: datetime, settings: Settings) -> bytes | None:
    """The .pkpass of ``row``'s version from its kept parts, or None when it must be
    rendered: another version was signed, the clock may have changed the card, or this
    process has not built a bundle of those files yet."""
    if row.signed_version != row.version or row.signed_files is None:
        return None
    if row.signed_until is not None and row.signed_until <= now:
        return None
    if row.signed_pass_json is None or row.signed_manifest is None or row.signature is None:
        return None
    found = _BLOCKS.get(row.signed_files)
    if found is None or found[0] != _installation(settings):
        return None
    return pkpass.zip_signed(row.signed_pass_json, row.signed_manifest, row.signature, found[1])
