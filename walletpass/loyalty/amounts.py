"""Amounts as they come in (a purchase, a refund, a membership payment, a program's
prices, an offer's discount), held to the shop's currency: TWD 12.50 or JPY 3.5 is refused
with the reason, before anything is written, rather than rounded into a balance."""

from __future__ import annotations

from decimal import Decimal

from walletpass import errors
from walletpass.i18n.catalogues import text
from walletpass.i18n.formats import AmountError, check_amount, minor_units, number


def check_money(amount: Decimal | None, currency: str, field: str) -> None:
    """Nothing, or ValidationFailed (422) naming ``field`` when ``currency`` cannot hold
    ``amount`` ("TWD has no minor unit: 12.5 must be a whole amount"), for the API, the
    CRM and the till, which answer in English."""
    if amount is None:
        return
    try:
        check_amount(Decimal(amount), currency)
    except AmountError as exc:
        raise errors.ValidationFailed(
            str(exc), errors=[{"field": field, "message": str(exc)}]
        ) from None


def amount_problem(amount: Decimal | None, currency: str, lang: str) -> str | None:
    """Why ``currency`` cannot hold ``amount``, in ``lang`` (a form's message in the
    admin's language), or None when it can."""
    if amount is None:
        return None
    try:
        check_amount(Decimal(amount), currency)
    except AmountError:
        digits = minor_units(currency)
        shown = number(Decimal(amount), lang)
        if digits == 0:
            return text(lang).gettext(
                "%(currency)s has no minor unit: enter a whole amount, not %(amount)s.",
                currency=currency.upper(),
                amount=shown,
            )
        return text(lang).ngettext(
            "%(currency)s has %(num)d decimal place: %(amount)s has more.",
            "%(currency)s has %(num)d decimal places: %(amount)s has more.",
            digits,
            currency=currency.upper(),
            amount=shown,
        )
    return None
