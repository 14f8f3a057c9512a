"""Expiry of points (or stamps): per-earn lots spent oldest first, or a rolling inactivity window.

Pure functions over simple ledger records; the job that writes ``expire`` entries and sends
warnings lives with the services. All datetimes are timezone-aware.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple, TypeVar

from walletpass.loyalty.rules import Expiry, LotExpiry, RollingExpiry

__all__ = [
    "ExpiringLot",
    "LedgerRecord",
    "add_months",
    "expires_at_for_earn",
    "lots_expiring",
    "open_lots",
    "points_to_expire",
    "rolling_expires_at",
    "rolling_expiry_due",
    "warning_due",
]

_D = TypeVar("_D", date, datetime)


def add_months(value: _D, months: int) -> _D:
    """``value`` moved by whole calendar months, clamped to the end of shorter months.

    Jan 31 + 1 month is Feb 28 (Feb 29 in a leap year); the time of day and the tzinfo are
    kept, so an aware local time stays the same wall-clock time across a DST change.

    :param value: a date or datetime.
    :param months: months to add, may be negative.
    """
    index = value.year * 12 + (value.month - 1) + months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


class LedgerRecord(NamedTuple):
    """The fields of a ledger entry that expiry needs.

    ``points`` > 0 is a lot (earn, bonus, positive adjustment), or points given back;
    ``points`` < 0 is a debit (redeem, expire, refund reversal, negative adjustment).
    ``reverses_id``, when set on a debit, names the lot it takes back first (a refund
    reversing the receipt's earn); on points given back (an undone redemption or
    refund), the debit whose points return to the lots they came from.
    """

    id: int
    at: datetime
    points: int
    kind: str
    expires_at: datetime | None
    reverses_id: int | None = None


class ExpiringLot(NamedTuple):
    """A lot still holding points after every debit has been applied."""

    lot_id: int
    points_left: int
    expires_at: datetime | None


def _is_expired(expires_at: datetime | None, at: datetime) -> bool:
    return expires_at is not None and expires_at <= at


@dataclass(slots=True)
class _Lot:
    id: int
    expires_at: datetime | None
    left: int


def open_lots(entries: Iterable[LedgerRecord]) -> list[ExpiringLot]:
    """The lots that still hold points, oldest first, after FIFO consumption by the debits.

    Debits are applied in time order (then id order). A debit takes from the lot it
    reverses first, if any; then an ``expire`` debit takes from lots already expired at its
    time, while any other debit takes from lots still valid at its time (so a redemption does
    not eat points that are due to expire anyway), each oldest first; then from the other
    lots. A debit that no lot covers (a reversal after the points were spent) leaves a
    deficit that later lots pay off first, so the lots always add up to the balance when the
    balance is positive.

    Points given back by reversing a debit (an undone redemption) return to the lots the
    debit took them from, with those lots' expiry: an undo must not turn points due to
    expire into points that never do. What the debit owed (its deficit) is settled first
    from what comes back beyond that; anything left over is a lot of its own.

    :param entries: a member's ledger records, in any order.
    """
    ordered = sorted(entries, key=lambda e: (e.at, e.id))
    lots: list[_Lot] = []  # in earn order
    by_id: dict[int, _Lot] = {}
    # What each debit took: from which lots, and how much no lot covered.
    taken: dict[int, tuple[list[tuple[_Lot, int]], int]] = {}
    deficit = 0
    for entry in ordered:
        if entry.points > 0:
            left = entry.points
            if entry.reverses_id is not None and entry.reverses_id in taken:
                took_from, owed = taken.pop(entry.reverses_id)
                for lot, took in took_from:
                    back = min(took, left)
                    lot.left += back
                    left -= back
                settled = min(owed, deficit, left)
                deficit -= settled
                left -= settled
                if not left:
                    continue
            paid = min(deficit, left)
            deficit -= paid
            lot = _Lot(entry.id, entry.expires_at, left - paid)
            lots.append(lot)
            by_id[entry.id] = lot
            continue
        need = -entry.points
        if need == 0:
            continue
        preferred: list[_Lot] = []
        if entry.reverses_id is not None and entry.reverses_id in by_id:
            preferred.append(by_id[entry.reverses_id])
        expired = [lot for lot in lots if _is_expired(lot.expires_at, entry.at)]
        valid = [lot for lot in lots if not _is_expired(lot.expires_at, entry.at)]
        preferred += expired + valid if entry.kind == "expire" else valid + expired
        from_lots: list[tuple[_Lot, int]] = []
        for lot in preferred:
            if not need:
                break
            take = min(lot.left, need)
            if take:
                lot.left -= take
                need -= take
                from_lots.append((lot, take))
        deficit += need
        taken[entry.id] = (from_lots, need)
    return [ExpiringLot(lot.id, lot.left, lot.expires_at) for lot in lots if lot.left > 0]


def lots_expiring(
    entries: Iterable[LedgerRecord], now: datetime, *, within: timedelta = timedelta(0)
) -> list[ExpiringLot]:
    """The open lots whose expiry is at or before ``now + within``, oldest first.

    With ``within=0`` these are the lots the expiry job must write off now; with
    ``within=timedelta(days=warn_days)`` they are the ones to warn about.

    :param entries: a member's ledger records.
    :param now: the current time (aware).
    :param within: look this far ahead.
    """
    horizon = now + within
    return [
        lot
        for lot in open_lots(entries)
        if lot.expires_at is not None and lot.expires_at <= horizon
    ]


def points_to_expire(entries: Iterable[LedgerRecord], now: datetime) -> int:
    """Points held in lots that have expired at ``now``: the size of the ``expire`` entry.

    After that entry (kind ``expire``, ``-points``, at ``now``) is in the ledger this
    returns 0, so running the job twice expires nothing twice.

    :param entries: a member's ledger records.
    :param now: the current time (aware).
    """
    return sum(lot.points_left for lot in lots_expiring(entries, now))


def expires_at_for_earn(expiry: Expiry, at: datetime) -> datetime | None:
    """The ``expires_at`` to store on an earn: ``at`` plus the lot lifetime, or None.

    Only ``lots`` mode dates an earn: with ``rolling`` the date moves with every activity
    (see :func:`rolling_expires_at`), with ``none`` nothing expires. Pass ``at`` in the
    merchant's time zone to count months on the merchant's calendar.

    :param expiry: the program's ``expiry`` rule.
    :param at: when the points were earned.
    """
    if isinstance(expiry, LotExpiry):
        return add_months(at, expiry.months)
    return None


def rolling_expires_at(last_activity_at: datetime, months: int) -> datetime:
    """When the whole balance expires under a rolling policy, unless there is activity first.

    :param last_activity_at: the member's last earn or redemption.
    :param months: the rolling period.
    """
    return add_months(last_activity_at, months)


def rolling_expiry_due(last_activity_at: datetime | None, months: int, now: datetime) -> bool:
    """Whether a rolling policy expires the whole balance now.

    Any activity renews the whole balance: the caller passes the latest earn or redemption
    (not the ``expire`` entries themselves, or an expiry would renew itself).

    :param last_activity_at: the member's last activity; None: never active, nothing due.
    :param months: the rolling period.
    :param now: the current time (aware).
    """
    if last_activity_at is None:
        return False
    return rolling_expires_at(last_activity_at, months) <= now


def warning_due(expiry: Expiry, expires_at: datetime | None, now: datetime) -> bool:
    """Whether members should be told now that points expire at ``expires_at``.

    True from ``warn_days`` days before until the expiry itself; the caller remembers it
    already warned about a lot (or a rolling date) so that the message goes out once.

    :param expiry: the program's ``expiry`` rule; ``warn_days`` 0 never warns.
    :param expires_at: a lot's expiry, or :func:`rolling_expires_at`.
    :param now: the current time (aware).
    """
    if not isinstance(expiry, LotExpiry | RollingExpiry) or not expiry.warn_days:
        return False
    if expires_at is None:
        return False
    return expires_at - timedelta(days=expiry.warn_days) <= now < expires_at
