"""A card whose design leads with the member's own card number (EAN-13 and the like) is
scanned by that number: the till finds the card as it finds it by our code."""

from __future__ import annotations

from scan_helpers import CAFE_POINTS, Till, join, shop

from walletpass.loyalty.models import Member, Program


def _numbered(runtime, cafe, card, number: str) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction(cafe["merchant_id"]) as s:
        s.get(Member, card["member_id"]).external_id = number
        s.get(Program, cafe["program_id"]).design = {"barcode_format": "ean13"}


def test_the_card_number_scans_like_the_code(client, runtime, settings):  # type: ignore[no-untyped-def]
    cafe = shop(runtime, settings, "points", CAFE_POINTS)
    card = join(runtime, settings, cafe)
    _numbered(runtime, cafe, card, "4006381333931")
    till = Till(client, cafe["key"])
    by_code = till.scan(code=card["code"], action="lookup")
    by_number = till.scan(code="4006381333931", action="lookup")
    assert by_number["member"]["id"] == by_code["member"]["id"] == card["member_id"]
    earned = till.scan(code="4006381333931", action="purchase", amount="500", receipt_id="r1")
    assert earned["member"]["id"] == card["member_id"]


def test_another_shops_card_number_is_unknown(client, runtime, settings):  # type: ignore[no-untyped-def]
    cafe = shop(runtime, settings, "points", CAFE_POINTS)
    other = shop(runtime, settings, "points", CAFE_POINTS)
    card = join(runtime, settings, other)
    _numbered(runtime, other, card, "4006381333931")
    Till(client, cafe["key"]).scan(404, code="4006381333931", action="lookup")
