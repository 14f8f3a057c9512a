"""Expiry: calendar months, FIFO lots with partial consumption, rolling renewal, warnings."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from walletpass.loyalty.expiry import (
    ExpiringLot,
    LedgerRecord,
    add_months,
    expires_at_for_earn,
    lots_expiring,
    open_lots,
    points_to_expire,
    rolling_expires_at,
    rolling_expiry_due,
    warning_due,
)
from walletpass.loyalty.rules import LotExpiry, NoExpiry, RollingExpiry


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=UTC)


LOTS_12 = LotExpiry(mode="lots", months=12, warn_days=14)


def earn(id_, when, points, months=12):
    return LedgerRecord(id_, when, points, "earn", add_months(when, months) if months else None)


def debit(id_, when, points, kind="redeem", reverses_id=None):
    return LedgerRecord(id_, when, -points, kind, None, reverses_id)


# --- calendar months --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 3, 31), 1, date(2025, 4, 30)),
        (date(2025, 12, 15), 1, date(2026, 1, 15)),
        (date(2025, 1, 15), 12, date(2026, 1, 15)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2025, 3, 31), -1, date(2025, 2, 28)),
        (date(2025, 1, 10), -1, date(2024, 12, 10)),
        (date(2025, 5, 5), 0, date(2025, 5, 5)),
    ],
)
def test_add_months_is_calendar_aware(start, months, expected):
    assert add_months(start, months) == expected


def test_add_months_keeps_local_wall_time_across_dst():
    paris = ZoneInfo("Europe/Paris")
    winter = datetime(2025, 1, 31, 9, 30, tzinfo=paris)
    summer = add_months(winter, 5)
    assert summer == datetime(2025, 6, 30, 9, 30, tzinfo=paris)
    assert summer.utcoffset() == timedelta(hours=2)


def test_expires_at_for_earn():
    assert expires_at_for_earn(LOTS_12, at(2025, 1, 31)) == at(2026, 1, 31)
    monthly = LotExpiry(mode="lots", months=1)
    assert expires_at_for_earn(monthly, at(2025, 1, 31)) == at(2025, 2, 28)
    assert expires_at_for_earn(monthly, at(2024, 1, 31)) == at(2024, 2, 29)
    # Rolling expiry moves with activity and none never expires: nothing to store per earn.
    assert expires_at_for_earn(RollingExpiry(mode="rolling", months=6), at(2025, 1, 1)) is None
    assert expires_at_for_earn(NoExpiry(mode="none"), at(2025, 1, 1)) is None


# --- lots -------------------------------------------------------------------------------------

LEDGER = [
    earn(1, at(2025, 1, 1), 100),
    earn(2, at(2025, 2, 1), 50),
    earn(3, at(2025, 3, 1), 30),
    debit(4, at(2025, 4, 1), 120),
]


def test_fifo_consumption_with_a_partial_lot():
    assert open_lots(LEDGER) == [
        ExpiringLot(2, 30, at(2026, 2, 1)),
        ExpiringLot(3, 30, at(2026, 3, 1)),
    ]


def test_order_of_the_records_does_not_matter():
    assert open_lots(reversed(LEDGER)) == open_lots(LEDGER)


def test_lots_expiring_and_points_to_expire():
    # The first lot was spent entirely: nothing expires on its date.
    assert points_to_expire(LEDGER, at(2026, 1, 15)) == 0
    assert lots_expiring(LEDGER, at(2026, 2, 1)) == [ExpiringLot(2, 30, at(2026, 2, 1))]
    assert points_to_expire(LEDGER, at(2026, 2, 1)) == 30
    assert points_to_expire(LEDGER, at(2026, 2, 1) - timedelta(seconds=1)) == 0
    assert points_to_expire(LEDGER, at(2026, 3, 2)) == 60


def test_writing_the_expire_entry_makes_the_job_idempotent():
    now = at(2026, 2, 2)
    ledger = [*LEDGER, LedgerRecord(5, now, -30, "expire", None)]
    assert points_to_expire(ledger, now) == 0
    assert open_lots(ledger) == [ExpiringLot(3, 30, at(2026, 3, 1))]


def test_warning_horizon():
    now = at(2026, 1, 20)
    assert lots_expiring(LEDGER, now) == []
    assert lots_expiring(LEDGER, now, within=timedelta(days=14)) == [
        ExpiringLot(2, 30, at(2026, 2, 1))
    ]


def test_redemption_spends_valid_points_before_expired_ones_not_yet_written_off():
    ledger = [
        earn(1, at(2025, 1, 1), 100, months=1),  # expires Feb 1
        earn(2, at(2025, 1, 15), 40),
        debit(3, at(2025, 2, 10), 30),  # the expiry job has not run yet
    ]
    assert open_lots(ledger) == [
        ExpiringLot(1, 100, at(2025, 2, 1)),
        ExpiringLot(2, 10, at(2026, 1, 15)),
    ]
    assert points_to_expire(ledger, at(2025, 2, 10)) == 100


def test_redemption_falls_back_to_expired_points_when_needed():
    ledger = [
        earn(1, at(2025, 1, 1), 100, months=1),
        earn(2, at(2025, 1, 15), 40),
        debit(3, at(2025, 2, 10), 60),
    ]
    assert open_lots(ledger) == [ExpiringLot(1, 80, at(2025, 2, 1))]


def test_expire_debit_takes_the_expired_lot_even_if_a_never_expiring_lot_is_older():
    ledger = [
        earn(1, at(2025, 1, 1), 20, months=0),  # e.g. a bonus that never expires
        earn(2, at(2025, 2, 1), 50, months=1),
        LedgerRecord(3, at(2025, 3, 1), -50, "expire", None),
    ]
    assert open_lots(ledger) == [ExpiringLot(1, 20, None)]
    assert points_to_expire(ledger, at(2030, 1, 1)) == 0


def test_refund_reversal_takes_back_its_own_lot_first():
    ledger = [
        earn(1, at(2025, 1, 1), 10),
        earn(2, at(2025, 2, 1), 26),
        debit(3, at(2025, 2, 2), 26, kind="refund", reverses_id=2),
    ]
    assert open_lots(ledger) == [ExpiringLot(1, 10, at(2026, 1, 1))]


def test_a_deficit_is_paid_off_by_the_next_lot():
    # Earned, spent, then the purchase was returned: the balance is -10 for a while.
    ledger = [
        earn(1, at(2025, 1, 1), 10),
        debit(2, at(2025, 1, 2), 10),
        debit(3, at(2025, 1, 3), 10, kind="refund", reverses_id=1),
        earn(4, at(2025, 2, 1), 25),
    ]
    assert open_lots(ledger) == [ExpiringLot(4, 15, at(2026, 2, 1))]
    assert sum(lot.points_left for lot in open_lots(ledger)) == sum(e.points for e in ledger)


def test_open_lots_ignores_zero_point_entries():
    ledger = [earn(1, at(2025, 1, 1), 10), LedgerRecord(2, at(2025, 1, 2), 0, "adjust", None)]
    assert open_lots(ledger) == [ExpiringLot(1, 10, at(2026, 1, 1))]


def test_lots_without_expiry_never_expire():
    ledger = [earn(1, at(2025, 1, 1), 10, months=0)]
    assert lots_expiring(ledger, at(2099, 1, 1)) == []


# --- rolling ----------------------------------------------------------------------------------


def test_rolling_expiry_after_inactivity():
    last = at(2025, 1, 31)
    assert rolling_expires_at(last, 1) == at(2025, 2, 28)
    assert not rolling_expiry_due(last, 1, at(2025, 2, 28) - timedelta(seconds=1))
    assert rolling_expiry_due(last, 1, at(2025, 2, 28))
    assert rolling_expiry_due(last, 1, at(2025, 6, 1))


def test_any_activity_renews_the_whole_balance():
    months, now = 6, at(2025, 8, 1)
    assert rolling_expiry_due(at(2025, 1, 15), months, now)
    # A stamp or a redemption on June 20 pushes everything to December 20.
    assert not rolling_expiry_due(at(2025, 6, 20), months, now)
    assert rolling_expires_at(at(2025, 6, 20), months) == at(2025, 12, 20)


def test_rolling_never_active():
    assert not rolling_expiry_due(None, 6, at(2025, 8, 1))


# --- warnings ---------------------------------------------------------------------------------

EXPIRES = at(2026, 3, 15)


@pytest.mark.parametrize(
    ("expiry", "expires_at", "now", "due"),
    [
        (LOTS_12, EXPIRES, at(2026, 3, 1), True),  # exactly 14 days before
        (LOTS_12, EXPIRES, at(2026, 3, 1) - timedelta(seconds=1), False),
        (LOTS_12, EXPIRES, at(2026, 3, 14), True),
        (LOTS_12, EXPIRES, EXPIRES, False),  # expired: nothing left to warn about
        (LotExpiry(mode="lots", months=12, warn_days=0), EXPIRES, at(2026, 3, 10), False),
        (RollingExpiry(mode="rolling", months=6, warn_days=7), EXPIRES, at(2026, 3, 8), True),
        (RollingExpiry(mode="rolling", months=6, warn_days=7), EXPIRES, at(2026, 3, 7), False),
        (NoExpiry(mode="none"), EXPIRES, at(2026, 3, 10), False),
        (LOTS_12, None, at(2026, 3, 10), False),
    ],
)
def test_warning_due(expiry, expires_at, now, due):
    assert warning_due(expiry, expires_at, now) is due
