"""Numbers, dates and money as a reader of one language writes them, in the merchant's currency.

Everything goes through Babel (CLDR): ``4.600,00 €`` for a Greek reader, ``€4,600.00``
for an English one. The number of decimals is the currency's, not the language's, with
one correction to CLDR: the New Taiwan dollar is written and paid in whole dollars (CLDR
keeps two digits for it, used only in accounting), as the yen is.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, get_currency_precision

from walletpass.i18n.languages import babel_locale

# Currencies whose amounts we refuse to hold decimals in, beyond CLDR's list of those
# with no minor unit (JPY, KRW, ...): the ones CLDR gives two accounting digits to but that
# shops and customers count only in whole units.
_WHOLE_UNITS = frozenset({"TWD", "HUF"})


class AmountError(ValueError):
    """An amount the currency cannot hold, such as TWD 12.50. The message says why."""


def minor_units(currency: str) -> int:
    """Digits after the decimal point an amount in this currency may have (TWD 0, EUR 2)."""
    code = currency.upper()
    return 0 if code in _WHOLE_UNITS else get_currency_precision(code)


def check_amount(amount: Decimal, currency: str) -> Decimal:
    """``amount`` unchanged, or AmountError when it has more decimals than the currency."""
    digits = minor_units(currency)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits:
        if digits == 0:
            raise AmountError(
                f"{currency.upper()} has no minor unit: {amount} must be a whole amount"
            )
        raise AmountError(f"{currency.upper()} has {digits} decimal places: {amount} has more")
    return amount


def money(amount: Decimal | int | None, currency: str, lang: str) -> str:
    """``4.600,00 €`` (el, EUR), ``$4,600`` (zh-Hant, TWD); an empty text for no amount."""
    if amount is None:
        return ""
    locale = babel_locale(lang)
    pattern = copy.copy(locale.currency_formats["standard"])
    digits = minor_units(currency)
    pattern.frac_prec = (digits, digits)
    return pattern.apply(Decimal(amount), locale, currency=currency.upper(), currency_digits=False)


def number(value: int | Decimal, lang: str) -> str:
    """``4.600`` (el), ``4,600`` (en)."""
    return format_decimal(value, locale=babel_locale(lang))


def day(value: date, lang: str) -> str:
    """A date in the reader's medium format: ``31 Dec 2026``, ``2026年12月31日``."""
    return format_date(value, format="medium", locale=babel_locale(lang))


def moment(value: datetime, lang: str, timezone: str | None = None) -> str:
    """A date and time in the reader's short format, in the merchant's time zone."""
    zone = ZoneInfo(timezone) if timezone else None
    return format_datetime(value, format="short", tzinfo=zone, locale=babel_locale(lang))
