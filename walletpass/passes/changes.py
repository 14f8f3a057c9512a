"""Marking passes changed: the one entry the domains call when what a card shows changes.

:func:`mark_changed` bumps each pass's version, change stamp and Last-Modified, and
writes the outbox jobs in the caller's transaction (one APNs push per distinct device
token, a Google sync per pass Google holds), so a crash after commit loses nothing.
A large change's pushes are paced at WALLETPASS_PUSH_RATE (walletpass.jobs.pacing): each
makes a phone fetch its pass, and the web service serves so many fetches a second.
:func:`bump_statement` gives the same bump as CTEs for a caller that merges it into a
statement of its own (a till purchase: the ledger post and the bump in one round trip).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, TypedDict, Unpack

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Insert,
    Select,
    String,
    Update,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.compiler import SQLCompiler

from walletpass.config import Settings
from walletpass.db import UTCDateTime, utcnow
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.pacing import enqueue_paced
from walletpass.jobs.queue import DEFAULT_MAX_ATTEMPTS, ON_PENDING_CONFLICT, enqueue_many
from walletpass.passes import stamps
from walletpass.passes.models import Pass, PassStatus

# A selection of passes: their ids, or a condition on walletpass.passes rows.
PassSelection = Sequence[int] | ColumnElement[bool]

# Large selections are bumped in batches of this many passes: each batch's UPDATE and
# pushes stay small, and no statement locks a whole program's passes at once.
BATCH = 1000
# A change of more passes than this has its pushes paced (when WALLETPASS_PUSH_RATE is
# set): a second's worth of fetches at the default rate. Fewer are pushed at once, and a
# member's change (a till scan's) always is, without touching the shared cursor.
PACE_ABOVE = 500


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def next_modified_at(previous: datetime | None, now: datetime | None = None) -> datetime:
    """Last-Modified for a new version: whole seconds, strictly after the previous one.

    HTTP dates have no fractions, so two versions within one second would share a
    Last-Modified and the second would answer 304 to a device holding the first. Moving
    the clock on by a second at most per change keeps If-Modified-Since exact.
    """
    now = whole_second(now or utcnow())
    if previous is None:
        return now
    return max(now, whole_second(previous) + timedelta(seconds=1))


_PASSES = Pass.__table__
_JOBS = Job.__table__
# By name: the Apple adapter imports this package, not the other way round.
_DEVICES = table(
    "apple_devices",
    column("id"),
    column("merchant_id"),
    column("pass_type_id"),
    column("push_token"),
)
_REGISTRATIONS = table("apple_registrations", column("device_id"), column("pass_id"))

# What a bump returns per pass, for the session's loaded objects and Google's sync jobs.
BUMPED_COLUMNS = (
    _PASSES.c.id,
    _PASSES.c.version,
    _PASSES.c.change_stamp,
    _PASSES.c.modified_at,
    _PASSES.c.google_object_id,
    _PASSES.c.merchant_id,
)
_WHOLE = bindparam("bump_whole", type_=UTCDateTime())
_NOW = bindparam("bump_now", type_=UTCDateTime())
_MAX_ATTEMPTS: BindParameter[int] = bindparam("bump_max_attempts")
_ACTIVE = _PASSES.c.status == PassStatus.ACTIVE.value


class _InsertPendingJobs(Insert):
    """INSERT ... SELECT into the outbox that leaves a job whose dedupe key is already
    pending alone (jobs.queue's rule). The dialects' own ON CONFLICT constructs cannot be
    cached, and compiling the till's statement on every scan would cost about a
    millisecond; this one is compiled once."""

    inherit_cache = True


class _Bump(Update):
    """The bump's UPDATE: it sets the columns it names and no others."""

    inherit_cache = True


def _own_columns_only(compiler: SQLCompiler, visit: Any, element: Any, **kw: Any) -> str:
    # SQLAlchemy adds to an INSERT or UPDATE every column that the execution's parameters
    # name, nested in a WITH too: the ledger's merged statement passes member_id and
    # merchant_id for its entry, which would otherwise be SET on the passes as well.
    keys, compiler.column_keys = compiler.column_keys, None
    try:
        return str(visit(element, **kw))
    finally:
        compiler.column_keys = keys


@compiles(_InsertPendingJobs)
def _compile_insert_pending(element: _InsertPendingJobs, compiler: SQLCompiler, **kw: Any) -> str:
    insert_sql = _own_columns_only(compiler, compiler.visit_insert, element, **kw)
    return f"{insert_sql} {ON_PENDING_CONFLICT}"


@compiles(_Bump)
def _compile_bump(element: _Bump, compiler: SQLCompiler, **kw: Any) -> str:
    return _own_columns_only(compiler, compiler.visit_update, element, **kw)


def push_key(pass_type_id: str, token: str, *, paced: bool = False) -> str:
    """The dedupe key of a device's pending push. Paced pushes have their own: a push
    queued now must not be absorbed by a paced one due minutes later (a till scan on a
    phone a campaign has yet to reach); that phone is then pushed twice, and its second
    fetch finds nothing new."""
    return f"{'apns-paced' if paced else 'apns'}:{pass_type_id}:{token}"


def _pushes(json_object: Any, passes_joined: Any, where: ColumnElement[bool]) -> Insert:
    """One pending push per distinct (pass type, token) among the devices registered for
    the passes ``passes_joined`` brings in: a device re-lists every changed pass of a type
    after one push, so ten changed passes on one phone need one push."""
    devices = _DEVICES.c
    rows = (
        select(
            devices.merchant_id,
            literal_column("'apple.push'"),
            json_object(
                literal_column("'pass_type_id'"),
                devices.pass_type_id,
                literal_column("'token'"),
                devices.push_token,
            ),
            # Typed as text, so that + is SQL's || on both backends.
            literal_column("'apns:'", String)
            + devices.pass_type_id
            + literal_column("':'", String)
            + devices.push_token,
            literal_column(f"'{JobStatus.PENDING.value}'"),
            _NOW,
            literal(0),
            _MAX_ATTEMPTS,
            _NOW,
        )
        .distinct()
        .select_from(passes_joined)
        # SQLite needs a WHERE before an upsert's ON CONFLICT in INSERT ... SELECT.
        .where(where)
    )
    return _InsertPendingJobs(_JOBS).from_select(
        [
            "merchant_id",
            "kind",
            "payload",
            "dedupe_key",
            "status",
            "run_at",
            "attempts",
            "max_attempts",
            "created_at",
        ],
        rows,
    )


@dataclass(frozen=True)
class PassBump:
    """A bump as CTEs for a caller's PostgreSQL statement: ``bumped`` updates the passes
    and returns BUMPED_COLUMNS, ``pushed`` queues their devices' pushes (add it with
    ``add_cte``). Execute with :meth:`params`; hand the bumped rows to
    :func:`mark_changed` (``bumped=``) to finish."""

    bumped: CTE
    pushed: CTE

    @staticmethod
    def params(now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        return {
            "bump_whole": whole_second(now),
            "bump_now": now,
            "bump_max_attempts": DEFAULT_MAX_ATTEMPTS,
        }


def bump_statement(where: ColumnElement[bool]) -> PassBump:
    """PostgreSQL: the bump of the passes ``where`` selects (a condition on
    walletpass.passes rows, SQLAlchemy expressions only), as CTEs. Last-Modified moves to
    this whole second or one second past the previous one, whichever is later
    (:func:`next_modified_at` in SQL); the stamp is the writing transaction's id.

    Build it once, with bind parameters, where it runs often: SQLAlchemy then compiles
    the statement that holds it once.
    """
    bumped = _bumped_cte(where)
    joined = _DEVICES.join(_REGISTRATIONS, _REGISTRATIONS.c.device_id == _DEVICES.c.id).join(
        bumped, bumped.c.id == _REGISTRATIONS.c.pass_id
    )
    pushed = _pushes(func.jsonb_build_object, joined, literal_column("true")).cte("pushed")
    return PassBump(bumped, pushed)


def _bumped_cte(where: ColumnElement[bool]) -> CTE:
    return (
        _Bump(_PASSES)
        .where(where)
        .values(
            version=_PASSES.c.version + 1,
            change_stamp=stamps.PG_STAMP,
            modified_at=func.greatest(
                _WHOLE, _PASSES.c.modified_at + literal_column("interval '1 second'")
            ),
        )
        .returning(*BUMPED_COLUMNS)
        .cte("bumped")
    )


def _whole_statement(bump: PassBump) -> Select[Any]:
    return select(*bump.bumped.c).add_cte(bump.pushed)


_PASS_IDS: BindParameter[list[int]] = bindparam("bump_pass_ids", expanding=True)
_MEMBER_ID: BindParameter[int] = bindparam("bump_member_id")
# PostgreSQL, built once: the bump and the pushes in one statement.
_PG_BY_IDS = _whole_statement(bump_statement(_PASSES.c.id.in_(_PASS_IDS)))
_PG_BY_MEMBER = _whole_statement(bump_statement((_PASSES.c.member_id == _MEMBER_ID) & _ACTIVE))
# A paced change's bump: its pushes are queued after it, on the shared cursor's slots.
_PG_BUMP_ONLY_BY_IDS = select(*_bumped_cte(_PASSES.c.id.in_(_PASS_IDS)).c)
# SQLite has no UPDATE in a WITH: the pushes follow the bump, by pass id.
_SQLITE_PUSHES = _pushes(
    func.json_object,
    _DEVICES.join(_REGISTRATIONS, _REGISTRATIONS.c.device_id == _DEVICES.c.id),
    _REGISTRATIONS.c.pass_id.in_(_PASS_IDS),
)
_SQLITE_BUMP_TO_WHOLE = (
    update(_PASSES)
    .where(_PASSES.c.id.in_(_PASS_IDS), _PASSES.c.modified_at < _WHOLE)
    .values(version=_PASSES.c.version + 1, change_stamp=bindparam("bump_stamp"), modified_at=_WHOLE)
    .returning(*BUMPED_COLUMNS)
)
_SQLITE_BUMP_ONE = (
    update(_PASSES)
    .where(_PASSES.c.id == bindparam("bump_pass_id"))
    .values(
        version=_PASSES.c.version + 1,
        change_stamp=bindparam("bump_stamp"),
        modified_at=bindparam("bump_modified_at", type_=UTCDateTime()),
    )
    .returning(*BUMPED_COLUMNS)
)


@dataclass(frozen=True)
class Change:
    """What :func:`change_passes` did: the passes bumped and, for a paced change, how
    many pushes it queued at what rate and when the last of them is due."""

    pass_ids: list[int]
    paced_pushes: int = 0
    push_rate: int | None = None  # None: pushed at once
    last_push_at: datetime | None = None


class ChangeArgs(TypedDict, total=False):
    """The keywords of :func:`mark_changed` and :func:`change_passes`."""

    passes: PassSelection
    member_id: int
    bumped: Sequence[Any]
    notify: bool
    now: datetime | None
    paced: bool | None


def mark_changed(session: Session, settings: Settings, **how: Unpack[ChangeArgs]) -> list[int]:
    """Record that what these passes show has changed, and queue the wallet updates.

    Name the passes by one of:

    :param passes: their ids, or a condition on walletpass.passes rows (an SQLAlchemy
        expression, e.g. ``(Pass.program_id == 7) & (Pass.status == "active")``),
        bumped in batches of :data:`BATCH`.
    :param member_id: the member's active passes (a till scan's case: one statement on
        PostgreSQL).
    :param bumped: the BUMPED_COLUMNS rows of a :func:`bump_statement` the caller ran in
        a statement of its own; only what follows the bump is done.
    :param notify: whether Google may notify the holder (balance or tier changes do;
        housekeeping does not). Apple decides by changeMessage on the changed fields.
    :param now: the time of the change (Last-Modified), now if not given.
    :param paced: whether the pushes are spread at WALLETPASS_PUSH_RATE on the shared
        cursor (walletpass.jobs.pacing). By default a selection of more than
        :data:`PACE_ABOVE` passes is; True paces a smaller part of a large change (a
        campaign's last batch). A member's passes, or ``bumped`` rows, are pushed at once.

    Objects of these passes already loaded in the session are given their new version,
    stamp and Last-Modified. Pending ORM changes are flushed first.

    :return: the ids of the passes bumped.
    """
    return change_passes(session, settings, **how).pass_ids


def change_passes(
    session: Session,
    settings: Settings,
    *,
    passes: PassSelection | None = None,
    member_id: int | None = None,
    bumped: Sequence[Any] | None = None,
    notify: bool = True,
    now: datetime | None = None,
    paced: bool | None = None,
) -> Change:
    """:func:`mark_changed`, telling how its pushes were paced (a campaign shows it)."""
    if sum(x is not None for x in (passes, member_id, bumped)) != 1:
        raise TypeError("name the passes by exactly one of passes, member_id or bumped")
    rate = settings.push_rate if passes is not None and paced is not False else 0
    pace = _Pace(rate)
    if bumped is None:
        session.flush()
        if member_id is not None:
            bumped = _bump(session, now, member_id=member_id)
        elif isinstance(passes, ColumnElement):
            bumped = []
            batches = _id_batches(session, passes)
            # Read ahead until the change is known to be large (the first batch, unless
            # BATCH is set below PACE_ABOVE): its every batch is then paced.
            ahead: list[list[int]] = []
            for ids in batches:
                ahead.append(ids)
                if sum(map(len, ahead)) > PACE_ABOVE:
                    break
            if paced is None and sum(map(len, ahead)) <= PACE_ABOVE:
                pace = _Pace(0)
            for ids in chain(ahead, batches):
                bumped.extend(_bump(session, now, pass_ids=ids, pace=pace))
        else:
            assert passes is not None
            if paced is None and len(passes) <= PACE_ABOVE:
                pace = _Pace(0)
            bumped = []
            for start in range(0, len(passes), BATCH):
                ids = list(passes[start : start + BATCH])
                bumped.extend(_bump(session, now, pass_ids=ids, pace=pace))
    _after_bump(session, settings, bumped, notify)
    return Change(
        pass_ids=[row.id for row in bumped],
        paced_pushes=pace.pushes,
        push_rate=pace.rate or None,
        last_push_at=pace.last,
    )


class _Pace:
    """The pacing of one change across its batches: the rate (0: pushed at once), and
    the pushes queued so far with the last one's slot."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.pushes = 0
        self.last: datetime | None = None

    def queue(self, session: Session, pass_ids: list[int], now: datetime) -> None:
        devices = _DEVICES.c
        rows = session.execute(
            select(devices.merchant_id, devices.pass_type_id, devices.push_token)
            .distinct()
            .select_from(_DEVICES.join(_REGISTRATIONS, _REGISTRATIONS.c.device_id == _DEVICES.c.id))
            .where(_REGISTRATIONS.c.pass_id.in_(pass_ids))
            # By merchant first: each merchant's run of slots is one INSERT.
            .order_by(devices.merchant_id, devices.pass_type_id, devices.push_token)
        ).all()
        slots = enqueue_paced(
            session,
            "apple.push",
            [
                (
                    merchant_id,
                    {"pass_type_id": pass_type_id, "token": token},
                    push_key(pass_type_id, token, paced=True),
                )
                for merchant_id, pass_type_id, token in rows
            ],
            rate=self.rate,
            now=now,
        )
        if slots is not None:
            self.pushes += slots.count
            self.last = max(self.last or slots.last, slots.last)


def _id_batches(session: Session, where: ColumnElement[bool]) -> Iterator[list[int]]:
    # Keyset pagination over ids, so a program with 100 000 members is not read at once;
    # through the ORM, so a session bound to a merchant reads that merchant's passes only.
    last = 0
    while True:
        ids = list(
            session.scalars(
                select(Pass.id).where(where, Pass.id > last).order_by(Pass.id).limit(BATCH)
            )
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def _bump(
    session: Session,
    now: datetime | None,
    *,
    pass_ids: list[int] | None = None,
    member_id: int | None = None,
    pace: _Pace | None = None,
) -> list[Any]:
    if pass_ids is not None and not pass_ids:
        return []
    conn = session.connection()
    params = PassBump.params(now)
    paced = pace is not None and pace.rate > 0
    if conn.dialect.name == "postgresql":
        if member_id is not None:
            return list(conn.execute(_PG_BY_MEMBER, params | {"bump_member_id": member_id}))
        if not paced:
            return list(conn.execute(_PG_BY_IDS, params | {"bump_pass_ids": pass_ids}))
        rows = list(conn.execute(_PG_BUMP_ONLY_BY_IDS, params | {"bump_pass_ids": pass_ids}))
    else:
        rows = _sqlite_bump(session, params, pass_ids=pass_ids, member_id=member_id)
        if not paced and rows:
            conn.execute(_SQLITE_PUSHES, params | {"bump_pass_ids": [row.id for row in rows]})
    if paced and rows:
        assert pace is not None
        pace.queue(session, [row.id for row in rows], params["bump_now"])
    return rows


def _sqlite_bump(
    session: Session,
    params: dict[str, Any],
    *,
    pass_ids: list[int] | None,
    member_id: int | None,
) -> list[Any]:
    conn = session.connection()
    if member_id is not None:
        pass_ids = list(
            conn.scalars(select(_PASSES.c.id).where(_PASSES.c.member_id == member_id, _ACTIVE))
        )
        if not pass_ids:
            return []
    assert pass_ids is not None  # the caller names the passes or their member
    # SQLite stores times as text: a pass already at this whole second (changed twice in
    # it) moves one second on, worked out here one pass at a time, under the one-writer
    # lock; the others move to this second in one UPDATE.
    params = params | {"bump_pass_ids": pass_ids, "bump_stamp": stamps.next_stamp(session)}
    rows = list(conn.execute(_SQLITE_BUMP_TO_WHOLE, params))
    done = {row.id for row in rows}
    rest = [pid for pid in pass_ids if pid not in done]
    if rest:
        for pass_id, previous in conn.execute(
            select(_PASSES.c.id, _PASSES.c.modified_at).where(_PASSES.c.id.in_(rest))
        ):
            rows.extend(
                conn.execute(
                    _SQLITE_BUMP_ONE,
                    {
                        "bump_pass_id": pass_id,
                        "bump_stamp": params["bump_stamp"],
                        "bump_modified_at": next_modified_at(previous, params["bump_now"]),
                    },
                )
            )
    return rows


def _after_bump(session: Session, settings: Settings, rows: Sequence[Any], notify: bool) -> None:
    for row in rows:
        loaded = session.identity_map.get(identity_key(Pass, row.id))
        if loaded is not None:
            for name in ("version", "change_stamp", "modified_at"):
                set_committed_value(loaded, name, getattr(row, name))
    if not settings.google_enabled:
        return
    by_merchant: dict[int, list[tuple[dict[str, Any], str | None]]] = {}
    for row in rows:
        if row.google_object_id:
            by_merchant.setdefault(row.merchant_id, []).append(
                ({"pass_id": row.id, "notify": notify}, f"google:{row.id}:{int(notify)}")
            )
    for merchant_id, syncs in by_merchant.items():
        enqueue_many(session, "google.sync", syncs, merchant_id=merchant_id)


def queue_google_sync(session: Session, settings: Settings, passes: ColumnElement[bool]) -> int:
    """Queue a silent ``google.sync`` for each pass Google holds among ``passes`` (a
    condition on walletpass.passes rows), without a bump: for a change that only Google's
    side of the card shows (a coupon issued to the member appears on their Google loyalty
    card as a linked offer; walletpass.google.links), so Apple gets no push and the pass
    no new version. Returns the number of jobs queued (pending ones absorb repeats)."""
    if not settings.google_enabled:
        return 0
    rows = session.execute(
        select(Pass.id, Pass.merchant_id)
        .where(passes, Pass.google_object_id.is_not(None))
        .order_by(Pass.id)
    ).all()
    by_merchant: dict[int, list[tuple[dict[str, Any], str | None]]] = {}
    for pass_id, merchant_id in rows:
        # The key _after_bump uses for a silent sync: one pending job per pass.
        by_merchant.setdefault(merchant_id, []).append(
            ({"pass_id": pass_id, "notify": False}, f"google:{pass_id}:0")
        )
    for merchant_id, syncs in by_merchant.items():
        enqueue_many(session, "google.sync", syncs, merchant_id=merchant_id)
    return len(rows)
