"""The PassKit web service's logic: authenticate, register, list changes, unregister, log."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Connection,
    bindparam,
    delete,
    func,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass.apple import problems
from walletpass.apple.models import Device, Registration
from walletpass.db import rowcount, utcnow
from walletpass.driversql import DriverStatement
from walletpass.passes import stamps
from walletpass.passes.models import ChangeCounter, Pass
from walletpass.passes.services import find_by_serial, record_event


class AppleError(Exception):
    status = 400


class NotFound(AppleError):
    status = 404


class Unauthorized(AppleError):
    status = 401


class BadRequest(AppleError):
    status = 400


def authenticate(session: Session, pass_type_id: str, serial: str, header: str | None) -> Pass:
    """The pass, if ``header`` is ``ApplePass <its token>``.

    :raise NotFound: no such pass (Wallet should stop asking, not retry).
    :raise Unauthorized: wrong or missing token.
    """
    pass_row = find_by_serial(session, pass_type_id, serial)
    if pass_row is None:
        raise NotFound
    if not token_matches(header, pass_row.auth_token):
        raise Unauthorized
    return pass_row


def token_matches(header: str | None, auth_token: str) -> bool:
    """Whether ``header`` is ``ApplePass <auth_token>`` (compared in constant time)."""
    scheme, _, token = (header or "").partition(" ")
    return scheme == "ApplePass" and hmac.compare_digest(
        token.strip().encode(), auth_token.encode()
    )


def register(session: Session, pass_row: Pass, library_id: str, push_token: str) -> bool:
    """Register a device for a pass. True if new (201), False if it already was (200).

    The push token is refreshed either way: devices re-register after a token change.
    """
    if not push_token or len(push_token) > 200:
        raise BadRequest
    for attempt in range(3):
        try:
            with session.begin_nested():
                return _register_once(session, pass_row, library_id, push_token)
        except IntegrityError:
            # Two registrations from one device raced (Wallet retries); the loser retries
            # and finds the winner's rows.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _register_once(session: Session, pass_row: Pass, library_id: str, push_token: str) -> bool:
    device = session.scalars(
        select(Device).where(
            Device.merchant_id == pass_row.merchant_id,
            Device.library_id == library_id,
            Device.pass_type_id == pass_row.pass_type_id,
        )
    ).one_or_none()
    now = utcnow()
    if device is None:
        device = Device(
            merchant_id=pass_row.merchant_id,
            library_id=library_id,
            pass_type_id=pass_row.pass_type_id,
            push_token=push_token,
            updated_at=now,
        )
        session.add(device)
        session.flush()
    else:
        device.push_token = push_token
        device.updated_at = now
    registration = session.scalars(
        select(Registration).where(
            Registration.device_id == device.id, Registration.pass_id == pass_row.id
        )
    ).one_or_none()
    if registration is not None:
        registration.updated_at = now
        session.flush()
        return False
    session.add(
        Registration(merchant_id=pass_row.merchant_id, device_id=device.id, pass_id=pass_row.id)
    )
    record_event(session, pass_row, "apple", "installed")
    session.flush()
    return True


def unregister(session: Session, pass_row: Pass, library_id: str) -> None:
    """Forget a device's registration for a pass, and the device once it holds none."""
    device = session.scalars(
        select(Device).where(
            Device.merchant_id == pass_row.merchant_id,
            Device.library_id == library_id,
            Device.pass_type_id == pass_row.pass_type_id,
        )
    ).one_or_none()
    if device is None:
        return
    deleted = rowcount(
        session.execute(
            delete(Registration).where(
                Registration.device_id == device.id, Registration.pass_id == pass_row.id
            )
        )
    )
    if deleted:
        record_event(session, pass_row, "apple", "removed")
        forget_signed_parts(session, pass_row)
    remaining = session.scalar(
        select(func.count()).select_from(Registration).where(Registration.device_id == device.id)
    )
    if not remaining:
        session.delete(device)
    session.flush()


def forget_signed_parts(session: Session, pass_row: Pass) -> None:
    """Drop a pass's kept signed parts once no device holds it: what the installation
    stores then grows with the passes in wallets, not with every pass ever fetched. A
    later fetch (the pass added again) signs it once more."""
    session.execute(
        update(Pass)
        .where(
            Pass.id == pass_row.id,
            ~select(Registration.id).where(Registration.pass_id == pass_row.id).exists(),
        )
        .values(
            signed_version=None,
            signed_pass_json=None,
            signed_manifest=None,
            signature=None,
            signed_files=None,
            signed_until=None,
        )
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class Since:
    """A parsed ``passesUpdatedSince`` tag."""

    stamp: int | None = None
    moment: datetime | None = None


def parse_tag(tag: str | None) -> Since:
    """Our tags are decimal change stamps. Anything else (an ISO date or Unix time from an
    older server, garbage) is read as best we can; an unreadable tag lists every pass,
    which costs the device a few 304s and never loses an update.
    """
    if tag is None or not tag.strip():
        return Since()
    tag = tag.strip()
    if tag.isdigit() and len(tag) <= 19:
        return Since(stamp=int(tag))
    try:
        seconds = float(tag)
    except ValueError:
        pass
    else:
        if 0 < seconds < 1e11:
            return Since(moment=datetime.fromtimestamp(int(seconds), tz=UTC))
        return Since()
    try:
        moment = datetime.fromisoformat(tag.replace("Z", "+00:00"))
    except ValueError:
        return Since()
    return Since(moment=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _foreign_number(value: int) -> Since:
    for scale in (1, 1000, 1_000_000):  # seconds, milliseconds, microseconds
        seconds = value / scale
        if 946_684_800 <= seconds <= 4_102_444_800:  # 2000-01-01 .. 2100-01-01
            return Since(moment=datetime.fromtimestamp(int(seconds), tz=UTC))
    return Since()


Listing = tuple[list[str], str] | None
# What listed_since answers for a tag that is not ours (a date, another server's number).
FOREIGN: Literal["foreign"] = "foreign"


def listed_since(
    conn: Connection, library_id: str, pass_type_id: str, tag: str | None
) -> Listing | Literal["foreign"]:
    """Serials of this device's passes changed after our ``tag`` and the next tag (None
    if none), in one statement: the changed passes with the stamps' bounds from the same
    snapshot. Every phone woken by a push lists before it fetches, so this is half of the
    herd's requests. :data:`FOREIGN` for a tag we did not issue: :func:`serials_since`
    reads it as a time."""
    since = parse_tag(tag)
    if since.moment is not None:
        return FOREIGN
    statement = _LISTING_PG if conn.dialect.name == "postgresql" else _LISTING_SQLITE
    rows = statement.rows(
        conn,
        {
            "library_id": library_id,
            "pass_type_id": pass_type_id,
            "stamp": -1 if since.stamp is None else since.stamp,
        },
    )
    low, high = rows[0].low, rows[0].high
    if since.stamp is not None and since.stamp > high:
        return FOREIGN  # above every stamp handed out
    listed = [(row.serial, row.change_stamp) for row in rows if row.serial is not None]
    return _answer(listed, since.stamp or 0, low)


def serials_since(session: Session, library_id: str, pass_type_id: str, tag: str | None) -> Listing:
    """:func:`listed_since`, with a tag we did not issue read as a time: a Unix time or
    date from another server, or a tag from a restored database."""
    found = listed_since(session.connection(), library_id, pass_type_id, tag)
    if found != FOREIGN:
        return found
    since = parse_tag(tag)
    if since.stamp is not None:
        since = _foreign_number(since.stamp)
    horizon = stamps.listing_horizon(session)
    query = (
        select(Pass.serial, Pass.change_stamp)
        .join(Registration, Registration.pass_id == Pass.id)
        .join(Device, Device.id == Registration.device_id)
        .where(Device.library_id == library_id, Device.pass_type_id == pass_type_id)
        .execution_options(all_merchants=True)
    )
    if since.moment is not None:
        query = query.where(Pass.modified_at > since.moment)
    rows = session.execute(query).all()
    return _answer(rows, 0, horizon)


def _answer(rows: Sequence[Any], previous: int, horizon: int | None) -> Listing:
    if not rows:
        return None
    newest = max(stamp for _, stamp in rows)
    tag_out = stamps.next_tag(newest, previous, horizon)
    return sorted({serial for serial, _ in rows}), str(tag_out)


def _listing_statement(bounds: Any) -> DriverStatement:
    """The device's passes stamped after :stamp, beside ``bounds`` (one row of the
    stamps' ``low``, the oldest stamp still in flight or NULL, and ``high``, above every
    stamp handed out): a left join, so the bounds come back when nothing changed."""
    passes, registrations, devices = (
        Pass.__table__.c,
        Registration.__table__.c,
        Device.__table__.c,
    )
    changed = (
        select(passes.serial, passes.change_stamp)
        .join_from(Pass.__table__, Registration.__table__, registrations.pass_id == passes.id)
        .join(Device.__table__, devices.id == registrations.device_id)
        .where(
            devices.library_id == bindparam("library_id"),
            devices.pass_type_id == bindparam("pass_type_id"),
            passes.change_stamp > bindparam("stamp", type_=BigInteger),
        )
        .subquery("changed")
    )
    return DriverStatement(
        select(bounds.c.low, bounds.c.high, changed.c.serial, changed.c.change_stamp).select_from(
            bounds.outerjoin(changed, true())
        )
    )


# The snapshot's xmin and xmax (walletpass.passes.stamps), read with the rows they bound.
_LISTING_PG = _listing_statement(
    select(
        literal_column(stamps.PG_LOW_SQL, BigInteger).label("low"),
        literal_column(stamps.PG_HIGH_SQL, BigInteger).label("high"),
    ).subquery("bounds")
)
# SQLite's writers take turns: nothing is in flight, and the counter is the top.
_LISTING_SQLITE = _listing_statement(
    select(
        null().label("low"),
        func.coalesce(
            select(ChangeCounter.__table__.c.value)
            .where(ChangeCounter.__table__.c.id == 1)
            .scalar_subquery(),
            0,
        ).label("high"),
    ).subquery("bounds")
)


def record_logs(session: Session, messages: list[str], remote_addr: str | None) -> int:
    """Store up to 100 of a post's messages (walletpass.apple.problems: with the serial,
    the pattern and, for one of our passes, the merchant)."""
    texts = [m for m in messages[:100] if isinstance(m, str)]
    return problems.record_wallet_logs(session, texts, remote_addr)
