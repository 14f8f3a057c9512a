"""Barcode formats a merchant may put on its cards, and what each can carry.

Apple's ``Pass.Barcodes`` (https://developer.apple.com/documentation/walletpasses/pass/barcodes-data.dictionary)
takes, from iOS 27, EAN-13, Code 39, Codabar and Interleaved 2 of 5 besides QR, PDF417,
Aztec and Code 128; Wallet draws the first entry it can render, so a card in one of the
new formats carries the QR code after it for iOS 26 and older. A merchant picks a format
to keep the numbers its tills already scan (a member's card number, ``external_id``);
Google Wallet gets the same format as its barcode ``type``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Our setting -> Apple's PKBarcodeFormat name. QR is the default and every card's fallback.
APPLE_FORMATS: Mapping[str, str] = {
    "qr": "PKBarcodeFormatQR",
    "ean13": "PKBarcodeFormatEAN13",
    "code39": "PKBarcodeFormatCode39",
    "codabar": "PKBarcodeFormatCodabar",
    "itf": "PKBarcodeFormatI2of5",
}
# Every format Wallet renders (a template may name any of them).
APPLE_KNOWN = frozenset(
    {
        "PKBarcodeFormatQR",
        "PKBarcodeFormatPDF417",
        "PKBarcodeFormatAztec",
        "PKBarcodeFormatCode128",
        "PKBarcodeFormatCode39",
        "PKBarcodeFormatCodabar",
        "PKBarcodeFormatEAN13",
        "PKBarcodeFormatI2of5",
    }
)
# Those iOS 26 and older cannot draw: a pass with only these shows no barcode there.
APPLE_IOS27_ONLY = frozenset(
    {
        "PKBarcodeFormatCode39",
        "PKBarcodeFormatCodabar",
        "PKBarcodeFormatEAN13",
        "PKBarcodeFormatI2of5",
    }
)
# Google Wallet's BarcodeType of the same symbology (walletobjects REST reference).
GOOGLE_TYPES: Mapping[str, str] = {
    "qr": "QR_CODE",
    "ean13": "EAN_13",
    "code39": "CODE_39",
    "codabar": "CODABAR",
    "itf": "ITF_14",
}
FORMATS = tuple(APPLE_FORMATS)

_DIGITS = re.compile(r"[0-9]+")
# Code 39: digits, capitals, space and - . $ / + %  (the * start/stop is the scanner's).
_CODE39 = re.compile(r"[0-9A-Z \-.$/+%]+")
# Codabar: digits and - $ : / . +, optionally between start/stop letters A-D.
_CODABAR = re.compile(r"[A-D]?[0-9\-$:/.+]+[A-D]?")


class BarcodeFormatError(ValueError):
    """A message the chosen format cannot carry; the text says what to fix."""


def ean13_check_digit(first12: str) -> int:
    """The 13th digit of an EAN-13 whose first twelve are ``first12``."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def check_message(fmt: str, message: str) -> None:
    """:raise BarcodeFormatError: ``message`` does not fit ``fmt`` (one of FORMATS)."""
    if fmt not in APPLE_FORMATS:
        raise BarcodeFormatError(f"unknown barcode format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "qr":
        if not message:
            raise BarcodeFormatError("a QR code needs a message")
        return
    if fmt == "ean13":
        if len(message) != 13 or not _DIGITS.fullmatch(message):
            raise BarcodeFormatError(
                f"EAN-13 needs exactly 13 digits; {message!r} has {len(message)} characters"
            )
        expected = ean13_check_digit(message[:12])
        if int(message[12]) != expected:
            raise BarcodeFormatError(
                f"EAN-13 {message!r} has check digit {message[12]}; its first twelve digits "
                f"need {expected}"
            )
    elif fmt == "itf":
        if not _DIGITS.fullmatch(message) or len(message) % 2:
            raise BarcodeFormatError(
                f"ITF (Interleaved 2 of 5) needs an even number of digits; {message!r} is not that"
            )
    elif fmt == "code39":
        if not _CODE39.fullmatch(message):
            raise BarcodeFormatError(
                f"Code 39 carries digits, capital letters, space and - . $ / + % only; "
                f"{message!r} has others"
            )
    elif fmt == "codabar" and not _CODABAR.fullmatch(message):
        raise BarcodeFormatError(
            f"Codabar carries digits and - $ : / . + only (optionally between start and "
            f"stop letters A-D); {message!r} has others"
        )


def fits(fmt: str, message: str) -> bool:
    try:
        check_message(fmt, message)
    except BarcodeFormatError:
        return False
    return True


def apple_entries(
    fmt: str, number: str | None, fallback: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """pass.json ``barcodes``: the card number in ``fmt`` first when it fits, then the
    template's own entries (the QR code every iOS draws). A number that does not fit
    (an old member's) leaves the card on its QR code rather than unscannable."""
    if fmt == "qr" or not number or not fits(fmt, number):
        return fallback
    entry = {
        "format": APPLE_FORMATS[fmt],
        "message": number,
        "messageEncoding": "iso-8859-1",
        "altText": number,
    }
    return [entry, *fallback]


def google_barcode(fmt: str, number: str | None, code: str) -> dict[str, str]:
    """The Google object's ``barcode``: the card number in the merchant's format when it
    fits, else the pass's own code as a QR code (Google shows one barcode only)."""
    if fmt != "qr" and number and fits(fmt, number):
        return {"type": GOOGLE_TYPES[fmt], "value": number, "alternateText": number}
    return {"type": "QR_CODE", "value": code, "alternateText": code}
