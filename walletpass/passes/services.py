"""Issue passes, record their changes, and hand out signed bundles.

Every content change goes through :func:`pass_changed`: it bumps the version, the change
stamp and Last-Modified, and writes the outbox jobs (APNs push per registered device,
Google PATCH) in the caller's transaction, so a crash after commit loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    TextClause,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from walletpass.config import Settings
from walletpass.db import UTCDateTime, utcnow
from walletpass.jobs.queue import DEFAULT_MAX_ATTEMPTS, enqueue, insert_select_sql
from walletpass.passes import codes, stamps
from walletpass.passes.models import Pass, PassStatus

if TYPE_CHECKING:
    from walletpass.passes.templates import PassTemplate


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def next_modified_at(previous: datetime | None, now: datetime | None = None) -> datetime:
    """Last-Modified for a new version: whole seconds, strictly after the previous one.

    HTTP dates have no fractions, so two versions within one second would share a
    Last-Modified and the second would answer 304 to a device holding the first. Moving
    the clock on by a second at most per change keeps If-Modified-Since exact.
    """
    now = _whole_second(now or utcnow())
    if previous is None:
        return now
    return max(now, _whole_second(previous) + timedelta(seconds=1))


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
    """Create a pass row (nothing is signed until a wallet asks for it)."""
    pass_row = Pass(
        merchant_id=merchant_id,
        serial=codes.new_serial(),
        pass_type_id=settings.pass_type_id,
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


def pass_changed(
    session: Session, pass_row: Pass, *, notify: bool = True, settings: Settings | None = None
) -> None:
    """Record that what ``pass_row`` shows has changed, and queue the wallet updates.

    :param notify: whether Google may notify the holder (balance/tier changes do;
        housekeeping does not). Apple decides by changeMessage on the changed fields.
    """
    pass_row.version += 1
    pass_row.change_stamp = stamps.stamp_for_update(session)
    pass_row.modified_at = next_modified_at(pass_row.modified_at)
    session.flush()
    queue_apple_pushes(session, [pass_row.id])
    if settings is not None and settings.google_enabled and pass_row.google_object_id:
        _queue_google_sync(session, pass_row.id, pass_row.merchant_id, notify)


def _queue_google_sync(session: Session, pass_id: int, merchant_id: int, notify: bool) -> None:
    enqueue(
        session,
        "google.sync",
        {"pass_id": pass_id, "notify": notify},
        merchant_id=merchant_id,
        dedupe_key=f"google:{pass_id}:{int(notify)}",
    )


def queue_apple_pushes(session: Session, pass_ids: Sequence[int]) -> int:
    """One pending push per distinct (pass type, push token) among these passes' devices.

    A device re-lists every changed pass of a type after one push, so ten changes, or
    ten changed passes on one phone, need one push while it is still pending. One
    INSERT ... SELECT, however many tokens (a campaign changes thousands of passes), and
    no round trip to read the tokens first: a till scan pays for this on every purchase.

    :return: how many pushes were queued (tokens already pending are not counted).
    """
    if not pass_ids:
        return 0
    dialect = session.get_bind().dialect.name
    stmt = _QUEUE_PUSHES[dialect]
    result = session.connection().execute(
        stmt, {"pass_ids": list(pass_ids), "now": utcnow(), "max_attempts": DEFAULT_MAX_ATTEMPTS}
    )
    return int(result.rowcount or 0)


def _pushes_select(build_object: str, passes: str) -> str:
    """The SELECT of one push job per distinct token of the passes ``passes`` joins in.
    ``build_object`` is the dialect's JSON constructor; both arguments are constants."""
    return (
        "SELECT DISTINCT d.merchant_id, 'apple.push', "  # noqa: S608 - constants only
        f"{build_object}('pass_type_id', d.pass_type_id, 'token', d.push_token), "
        "'apns:' || d.pass_type_id || ':' || d.push_token, 'pending', :now, 0, "
        f":max_attempts, :now FROM apple_devices d "
        f"JOIN apple_registrations r ON r.device_id = d.id {passes}"
    )


def _queue_pushes_sql(build_object: str) -> TextClause:
    # Core text, so SQLAlchemy compiles it once (its dialect INSERT constructs are not
    # cacheable). The pass ids scope it to their merchant.
    return text(
        insert_select_sql(_pushes_select(build_object, "WHERE r.pass_id IN :pass_ids"))
    ).bindparams(bindparam("pass_ids", expanding=True), bindparam("now", type_=UTCDateTime()))


_QUEUE_PUSHES = {
    "postgresql": _queue_pushes_sql("jsonb_build_object"),
    "sqlite": _queue_pushes_sql("json_object"),
}


_PASSES = Pass.__table__
BUMPED_COLUMNS = (
    _PASSES.c.id,
    _PASSES.c.version,
    _PASSES.c.change_stamp,
    _PASSES.c.modified_at,
    _PASSES.c.google_object_id,
    _PASSES.c.merchant_id,
)
BUMP_TYPES = (bindparam("whole", type_=UTCDateTime()), bindparam("now", type_=UTCDateTime()))


def _member_active(member_id: Any) -> ColumnElement[bool]:
    return (_PASSES.c.member_id == member_id) & (_PASSES.c.status == PassStatus.ACTIVE.value)


def bump_member_passes_ctes(only_if: str = "true") -> str:
    """PostgreSQL, a till scan's pass work as two CTEs for a WITH: ``bumped`` bumps the
    member's (``:for_member``) active passes (Last-Modified to this whole second or one
    second past the previous one, whichever is later: next_modified_at() in SQL) and
    returns BUMPED_COLUMNS; ``pushed`` queues one push per token of their devices.

    :param only_if: an SQL condition (a constant) the bump also needs, e.g. that a CTE
        before it wrote a row. Takes :func:`bump_params` (types: BUMP_TYPES).
    """
    return (
        "bumped AS (UPDATE passes SET version = version + 1, "  # noqa: S608 - constants only
        f"change_stamp = {stamps.PG_STAMP_SQL}, "
        "modified_at = greatest(:whole, modified_at + interval '1 second') "
        f"WHERE member_id = :for_member AND status = 'active' AND {only_if} "
        f"RETURNING {', '.join(c.name for c in BUMPED_COLUMNS)}), "
        "pushed AS ("
        + insert_select_sql(
            _pushes_select("jsonb_build_object", "JOIN bumped b ON b.id = r.pass_id WHERE true")
        )
        + " RETURNING 1)"
    )


def bump_params(member_id: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "for_member": member_id,
        "whole": _whole_second(now),
        "now": now,
        "max_attempts": DEFAULT_MAX_ATTEMPTS,
    }


_BUMP_MEMBER_PASSES = (
    text(
        f"WITH {bump_member_passes_ctes()} "  # noqa: S608 - constants only
        f"SELECT {', '.join(c.name for c in BUMPED_COLUMNS)} FROM bumped"
    )
    .bindparams(*BUMP_TYPES)
    .columns(*BUMPED_COLUMNS)
)


def member_passes_changed(
    session: Session, settings: Settings, member_id: int, *, notify: bool = True
) -> list[int]:
    """:func:`pass_changed` for every active pass of a member: the bump and the pushes in
    one statement on PostgreSQL (a few on SQLite) and, when Google holds one of the
    passes, its sync job. Objects of those passes already loaded in the
    session are given the new values, so nothing reads stale versions afterwards.

    :return: the ids of the passes bumped.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_BUMP_MEMBER_PASSES, bump_params(member_id)).all()
    else:
        # SQLite stores times as text: Last-Modified is worked out here, one pass at a time
        # (a member has one active pass, rarely two), under the one-writer lock.
        whole = _whole_second(utcnow())
        stamp = stamps.next_stamp(session)
        rows = []
        for pass_id, previous in conn.execute(
            select(_PASSES.c.id, _PASSES.c.modified_at).where(_member_active(member_id))
        ).all():
            rows.extend(
                conn.execute(
                    update(_PASSES)
                    .where(_PASSES.c.id == pass_id)
                    .values(
                        version=_PASSES.c.version + 1,
                        change_stamp=stamp,
                        modified_at=next_modified_at(previous, whole),
                    )
                    .returning(*BUMPED_COLUMNS)
                ).all()
            )
        queue_apple_pushes(session, [row.id for row in rows])
    return after_bump(session, settings, rows, notify=notify)


def after_bump(
    session: Session, settings: Settings, rows: Sequence[Any], *, notify: bool = True
) -> list[int]:
    """What follows a bump whose BUMPED_COLUMNS ``rows`` came back: the session's loaded
    objects of those passes get the new values, and Google's copies a sync job.

    :return: the ids of the passes bumped.
    """
    for row in rows:
        loaded = session.identity_map.get(identity_key(Pass, row.id))
        if loaded is not None:
            for name in ("version", "change_stamp", "modified_at"):
                set_committed_value(loaded, name, getattr(row, name))
    if settings.google_enabled:
        for row in rows:
            if row.google_object_id:
                _queue_google_sync(session, row.id, row.merchant_id, notify)
    return [row.id for row in rows]


def passes_changed_bulk(
    session: Session, pass_ids: Sequence[int], now: datetime | None = None
) -> None:
    """What :func:`pass_changed` does to each pass, for many passes in a few statements
    (without the pushes; follow with :func:`queue_apple_pushes`).

    One change stamp serves the whole transaction (every pass changed in it shares the
    commit, so the ``passesUpdatedSince`` ordering holds); Last-Modified moves to this
    whole second, or one second past a pass already there (as :func:`next_modified_at`).
    """
    if not pass_ids:
        return
    now = now or utcnow()
    stamp = stamps.next_stamp(session)
    whole = now.replace(microsecond=0)
    updated = set(
        session.scalars(
            update(Pass)
            .where(Pass.id.in_(pass_ids), Pass.modified_at < whole)
            .values(version=Pass.version + 1, change_stamp=stamp, modified_at=whole)
            .returning(Pass.id)
            .execution_options(synchronize_session=False)
        )
    )
    rest = [pid for pid in pass_ids if pid not in updated]
    if rest:
        for pass_row in session.scalars(
            select(Pass).where(Pass.id.in_(rest)).execution_options(populate_existing=True)
        ):
            pass_row.version += 1
            pass_row.change_stamp = stamp
            pass_row.modified_at = next_modified_at(pass_row.modified_at, now)
        session.flush()


def record_event(session: Session, pass_row: Pass, platform: str, kind: str) -> None:
    """An install, removal or fetch of a pass by a wallet: kept for the KPIs and the
    campaign delivery proxy; installs and removals also go out to subscribed CRMs."""
    from walletpass.crm.events import emit
    from walletpass.passes.models import PassEvent

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
    pass_changed(session, pass_row, notify=False, settings=settings)


@dataclass(frozen=True)
class Signature:
    """What signing a version produced, kept on the pass so that the next fetch of the
    same version only assembles the archive."""

    pass_json: bytes
    manifest: bytes
    signature: bytes


@dataclass(frozen=True)
class Bundle:
    data: bytes
    modified_at: datetime
    version: int
    # Set when this bundle was signed now rather than from the pass's kept signature.
    new_signature: Signature | None = None


def remember_signature(session: Session, pass_id: int, bundle: Bundle) -> None:
    """Keep ``bundle``'s new signature on the pass, unless the pass has moved on to another
    version since (its signature would be for a version nobody fetches again)."""
    kept = bundle.new_signature
    if kept is None:
        return
    session.execute(
        update(Pass)
        .where(Pass.id == pass_id, Pass.version == bundle.version)
        .values(
            signed_version=bundle.version,
            signed_pass_json=kept.pass_json,
            signed_manifest=kept.manifest,
            signature=kept.signature,
        )
        .execution_options(synchronize_session=False)
    )


def build_bundle(
    settings: Settings,
    pass_row: Pass,
    variables: Mapping[str, Any],
    design_images: Mapping[str, str] | None = None,
) -> Bundle:
    """The .pkpass of the pass's current version, changing nothing: it only reads, so a
    fetch can build it without holding a write transaction (on SQLite, the database's one
    write lock) while it renders and signs. :func:`remember_signature` keeps a new
    signature afterwards.

    :param variables: what the card shows now (walletpass.cards works it out; this layer
        reads no loyalty, offer or campaign state).
    :param design_images: the merchant's uploaded images by file name (a program's
        ``design["images"]``, paths under the instance home), put in place of the
        template's own.
    """
    # Imported here: the template and signing modules load images and keys, which the
    # web service's list/register paths never need.
    from walletpass.passes import pkpass, render, templates
    from walletpass.passes.signing import load_identity

    template = templates.load_template(
        templates.template_dir(settings.templates_dir, pass_row.template)
    )
    files, hashes = render.bundle_files(template, variables)
    if design_images:
        _apply_design_images(settings, template, design_images, files, hashes)
    cached = (
        pass_row.signed_version == pass_row.version
        and pass_row.signed_pass_json is not None
        and pass_row.signed_manifest is not None
        and pass_row.signature is not None
    )
    if cached:
        assert pass_row.signed_manifest is not None and pass_row.signed_pass_json is not None
        manifest = json.loads(pass_row.signed_manifest)
        # The files are derived from state; if they no longer match what was signed
        # (a template image replaced on disk), sign again rather than ship a bad pass.
        cached = set(manifest) == set(hashes) | {"pass.json"} and all(
            manifest[name] == digest for name, digest in hashes.items()
        )
    if cached:
        assert pass_row.signed_pass_json and pass_row.signed_manifest and pass_row.signature
        data = pkpass.assemble_pkpass(
            pass_row.signed_pass_json, pass_row.signed_manifest, pass_row.signature, files
        )
        return Bundle(data, pass_row.modified_at, pass_row.version)
    identity = load_identity(settings.resolved_certs_dir, settings.secret_key or None)
    pass_json = render.render_pass_json(
        template,
        variables,
        voided=pass_row.status == PassStatus.VOIDED,
        expiration_date=_expiration(variables),
    )
    parts = pkpass.build_pkpass(render.dumps_pass_json(pass_json), files, hashes, identity)
    return Bundle(
        parts.zip_bytes,
        pass_row.modified_at,
        pass_row.version,
        Signature(parts.pass_json, parts.manifest, parts.signature),
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
    raw = variables.get("offer_valid_until") or variables.get("membership_valid_until")
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
