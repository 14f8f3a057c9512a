"""Amounts as they come in (a purchase, a refund, a membership payment, a program's
prices, an offer's discount), held to the shop's currency: TWD 12.50 or JPY 3.5 is refused
with the reason, before anything is written, rather than rounded into a balance."""

from __future__ import annotations

from decimal import Decimal

from walletpass import errors
from walletpass.i18n.formats import AmountError, check_amount


def check_money(amount: Decimal | None, currency: str, field: str) -> None:
    """Nothing, or ValidationFailed (422) naming ``field`` when ``currency`` cannot hold
    ``amount`` ("TWD has no minor unit: 12.5 must be a whole amount")."""
    if amount is None:
        return
    try:
        check_amount(Decimal(amount), currency)
    except AmountError as exc:
        raise errors.ValidationFailed(
            str(exc), errors=[{"field": field, "message": str(exc)}]
        ) from None
