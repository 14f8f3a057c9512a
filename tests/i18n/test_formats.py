"""Money, numbers and dates as each language writes them, in the merchant's currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from walletpass.i18n.formats import AmountError, check_amount, day, minor_units, money, number


@pytest.mark.parametrize(
    ("amount", "currency", "lang", "written"),
    [
        (Decimal("4600"), "EUR", "el", "4.600,00\xa0€"),
        (Decimal("4600"), "EUR", "en", "€4,600.00"),
        (Decimal("4600"), "TWD", "zh-Hant", "$4,600"),
        (Decimal("4600"), "TWD", "en", "NT$4,600"),
        (Decimal("1234.5"), "HKD", "zh-Hant", "HK$1,234.50"),
        (Decimal("500"), "JPY", "el", "500\xa0JP¥"),
        (None, "EUR", "el", ""),
    ],
)
def test_money_is_written_in_the_readers_way_with_the_currencys_decimals(
    amount: Decimal | None, currency: str, lang: str, written: str
) -> None:
    assert money(amount, currency, lang) == written


def test_whole_unit_currencies_refuse_decimals_with_a_reason() -> None:
    assert minor_units("TWD") == 0
    assert minor_units("JPY") == 0
    assert minor_units("EUR") == 2
    assert check_amount(Decimal("120"), "TWD") == Decimal("120")
    assert check_amount(Decimal("120.00"), "TWD") == Decimal("120.00")
    with pytest.raises(AmountError, match=r"TWD has no minor unit: 12\.5 must be a whole amount"):
        check_amount(Decimal("12.5"), "twd")
    with pytest.raises(AmountError, match="JPY has no minor unit"):
        check_amount(Decimal("0.01"), "JPY")
    with pytest.raises(AmountError, match=r"EUR has 2 decimal places: 1\.005 has more"):
        check_amount(Decimal("1.005"), "EUR")


def test_numbers_and_dates_follow_the_reader() -> None:
    assert number(4600, "el") == "4.600"
    assert number(4600, "zh-Hant") == "4,600"
    assert day(date(2026, 12, 31), "zh-Hant") == "2026年12月31日"
    assert day(date(2026, 12, 31), "el") == "31 Δεκ 2026"
