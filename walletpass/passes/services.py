"""Issue passes, set their status, and hand out signed bundles.

What a pass shows changes through :func:`walletpass.passes.changes.mark_changed`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from walletpass.certs import merchant as merchant_certs
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.events import emit
from walletpass.passes import codes, pkpass, render, stamps, stored, templates
from walletpass.passes.changes import mark_changed, next_modified_at
from walletpass.passes.models import Pass, PassEvent, PassStatus

if TYPE_CHECKING:
    from walletpass.passes.templates import PassTemplate


def issue_pass(
    session: Session,
    settings: Settings,
    *,
    merchant_id: int,
    template: str,
    program_id: int | None = None,
    member_id: int | None = None,
    coupon_id: int | None = None,
) -> Pass:
    """Create a pass row (nothing is signed until a wallet asks for it).

    Its pass type is the merchant's own certificate's when it has one, else the
    installation's; the pass keeps it for life (walletpass.certs.merchant).
    """
    pass_row = Pass(
        merchant_id=merchant_id,
        serial=codes.new_serial(),
        pass_type_id=merchant_certs.pass_type_for_new_pass(session, settings, merchant_id),
        auth_token=codes.new_auth_token(),
        barcode=codes.new_barcode(),
        template=template,
        program_id=program_id,
        member_id=member_id,
        coupon_id=coupon_id,
        status=PassStatus.ACTIVE,
        version=1,
        change_stamp=stamps.stamp_for_update(session),
        modified_at=next_modified_at(None),
    )
    session.add(pass_row)
    session.flush()
    return pass_row


def record_event(session: Session, pass_row: Pass, platform: str, kind: str) -> None:
    """An install, removal or fetch of a pass by a wallet: kept for the KPIs and the
    campaign delivery proxy; installs and removals also go out to subscribed CRMs."""
    session.add(
        PassEvent(
            merchant_id=pass_row.merchant_id,
            pass_id=pass_row.id,
            platform=platform,
            kind=kind,
            version=pass_row.version,
            created_at=utcnow(),
        )
    )
    if kind in ("installed", "removed"):
        emit(
            session,
            pass_row.merchant_id,
            f"pass.{kind}",
            {
                "pass_serial": pass_row.serial,
                "platform": platform,
                "member_id": pass_row.member_id,
                "coupon_id": pass_row.coupon_id,
            },
        )


def set_status(session: Session, pass_row: Pass, status: PassStatus, settings: Settings) -> None:
    if pass_row.status == status:
        return
    pass_row.status = status
    mark_changed(session, settings, passes=[pass_row.id], notify=False)


@dataclass(frozen=True)
class Bundle:
    data: bytes
    modified_at: datetime
    version: int
    # What the pass row should keep now (a new signature, or the kept one for other files
    # or a later ``signed_until``); None when the row already keeps this.
    keep: stored.Kept | None = None


def remember_signature(session: Session, pass_id: int, bundle: Bundle) -> None:
    """Keep ``bundle``'s signed parts on the pass, unless the pass has moved on to another
    version since (they would be for a version nobody fetches again)."""
    kept = bundle.keep
    if kept is None:
        return
    session.execute(
        update(Pass)
        .where(Pass.id == pass_id, Pass.version == kept.version)
        .values(
            signed_version=kept.version,
            signed_pass_json=kept.pass_json,
            signed_manifest=kept.manifest,
            signature=kept.signature,
            signed_files=kept.files,
            signed_until=kept.until,
        )
        .execution_options(synchronize_session=False)
    )


def build_bundle(
    settings: Settings,
    pass_row: Pass,
    variables: Mapping[str, Any],
    design_images: Mapping[str, str] | None = None,
    locations: Sequence[Mapping[str, Any]] = (),
    fresh_until: datetime | None = None,
) -> Bundle:
    """The .pkpass of the pass's current version, changing nothing: it only reads, so a
    fetch can build it without holding a write transaction (on SQLite, the database's one
    write lock) while it renders and signs. :func:`remember_signature` keeps what it
    signed afterwards, for :mod:`walletpass.passes.stored` to answer the next fetches.

    :param variables: what the card shows now (walletpass.cards works it out; this layer
        reads no loyalty, offer or campaign state).
    :param design_images: the merchant's uploaded images by file name (a program's
        ``design["images"]``, paths under the instance home), put in place of the
        template's own.
    :param locations: the pass.json ``locations`` (the merchant's stores with coordinates).
    :param fresh_until: the first moment the clock alone may change ``variables``
        (walletpass.cards.clock); the kept parts answer fetches until then.
    """
    signer, session = _signer(settings, pass_row)
    if signer.row_id is not None:
        # A merchant's own certificate: pass.json must name its team, or Wallet refuses
        # the pass (the type is the pass's own already).
        variables = {**variables, "team_id": signer.team_id}
    template = templates.load_template(
        templates.template_dir(settings.templates_dir, pass_row.template)
    )
    files, hashes = render.bundle_files(template, variables)
    if design_images:
        _apply_design_images(settings, template, design_images, files, hashes)
    if render.uses_poster(template, variables):
        render.add_poster_images(files, hashes)
    pass_json = render.dumps_pass_json(
        render.render_pass_json(
            template,
            variables,
            voided=bool(variables.get("voided", pass_row.status == PassStatus.VOIDED)),
            expiration_date=_expiration(variables),
            locations=locations,
        )
    )
    files_key = stored.files_digest(stored.render_context(settings, template.pass_json), hashes)
    stored.keep_block(settings, files_key, files)
    # The kept signature is for the pass.json it signed, whatever the version says: what
    # a card shows also changes by the clock alone (an offer ends, an overlay's dates
    # pass) before the job at that moment bumps the version, and the signed copy of the
    # offer still running must not be handed out meanwhile.
    signed = pass_row.signed_version == pass_row.version and pass_row.signed_pass_json == pass_json
    if signed and pass_row.signed_files != files_key:
        # Kept before the files were named (or under other ones): if they no longer match
        # what was signed (a template image replaced on disk), sign again rather than ship
        # a bad pass.
        manifest = json.loads(pass_row.signed_manifest or b"{}")
        signed = set(manifest) == set(hashes) | {"pass.json"} and all(
            manifest[name] == digest for name, digest in hashes.items()
        )
    if signed and pass_row.signed_manifest is not None and pass_row.signature is not None:
        now = utcnow()
        still = (
            pass_row.signed_files == files_key
            and pass_row.signed_until is not None
            and pass_row.signed_until > now
        )
        keep = None
        if not still:
            keep = stored.Kept(
                pass_row.version,
                pass_json,
                pass_row.signed_manifest,
                pass_row.signature,
                files_key,
                fresh_until,
            )
        data = pkpass.assemble_pkpass(
            pass_json, pass_row.signed_manifest, pass_row.signature, files
        )
        return Bundle(data, pass_row.modified_at, pass_row.version, keep)
    identity = signer.identity(session, settings)
    parts = pkpass.build_pkpass(pass_json, files, hashes, identity)
    return Bundle(
        parts.zip_bytes,
        pass_row.modified_at,
        pass_row.version,
        stored.Kept(
            pass_row.version,
            parts.pass_json,
            parts.manifest,
            parts.signature,
            files_key,
            fresh_until,
        ),
    )


def _signer(settings: Settings, pass_row: Pass) -> tuple[merchant_certs.Signer, Session | None]:
    """Who signs this pass: chosen by the pass's own type (and merchant), never by the
    merchant's current certificate alone, since a pass's type cannot change."""
    session = object_session(pass_row)
    if pass_row.pass_type_id == settings.pass_type_id or session is None:
        # The installation's type needs no lookup; a detached pass of another type finds
        # no signer and fails in Signer.identity.
        return merchant_certs.installation_signer(settings, pass_row.pass_type_id), session
    return (
        merchant_certs.signer_for(session, settings, pass_row.pass_type_id, pass_row.merchant_id),
        session,
    )


def _apply_design_images(
    settings: Settings,
    template: PassTemplate,
    images: Mapping[str, str],
    files: dict[str, bytes],
    hashes: dict[str, str],
) -> None:
    """Put the merchant's uploaded logo and strip in place of the template's own. An image
    the template draws per pass (the stamp card's strip) is left alone: it shows the
    customer's stamps."""
    home = settings.home.resolve()
    for name, relative in images.items():
        if files.get(name) is not template.static_files.get(name) or name not in files:
            continue
        path = (home / str(relative)).resolve()
        if not path.is_relative_to(home) or not path.is_file():
            continue  # a stale or tampered path: keep the template's image
        data, digest = _read_design_image(str(path), path.stat().st_mtime_ns)
        files[name] = data
        hashes[name] = digest


@functools.lru_cache(maxsize=256)
def _read_design_image(path: str, _mtime_ns: int) -> tuple[bytes, str]:
    # Keyed on the modification time: a re-upload is read again, a fetch is not.
    data = Path(path).read_bytes()
    return data, hashlib.sha1(data).hexdigest()  # noqa: S324 - Apple's manifest uses SHA-1


def _expiration(variables: Mapping[str, object]) -> datetime | None:
    # A coupon's end only. A membership card past its end is not dead but lapsed: it
    # stays in the wallet saying so (walletpass.cards), for its barcode to be renewed at
    # the counter, where an expirationDate would grey it out and file it away.
    raw = variables.get("offer_valid_until")
    if not raw:
        return None
    moment = datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def find_by_serial(session: Session, pass_type_id: str, serial: str) -> Pass | None:
    return session.scalars(
        select(Pass)
        .where(Pass.serial == serial, Pass.pass_type_id == pass_type_id)
        .execution_options(all_merchants=True)
    ).one_or_none()
