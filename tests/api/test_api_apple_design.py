"""The Apple settings of a program's design through the API: the poster style and the
barcode format, refused with a problem (and nothing changed) when they cannot be met."""

from __future__ import annotations

from api_helpers import make_shop, new_member, new_program
from sqlalchemy import select

from walletpass.loyalty.models import Program
from walletpass.passes.models import Pass


def test_poster_style_and_barcode_format_are_set_and_shown(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", design={"poster_style": True})
    assert program["design"]["poster_style"] is True
    member = new_member(shop, program["id"], external_id="4006381333931")
    changed = shop.admin.patch(
        f"/programs/{program['id']}", {"design": {"poster_style": True, "barcode_format": "ean13"}}
    )
    assert changed["design"]["barcode_format"] == "ean13"
    with runtime.transaction(shop.merchant_id) as s:
        version = s.scalar(select(Pass.version).where(Pass.member_id == member["id"]))
    assert version == 2  # every card of the program is refreshed


def test_a_format_a_members_card_number_does_not_fit_is_a_problem(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points")
    new_member(shop, program["id"], external_id="4006381333931")
    new_member(shop, program["id"], external_id="4006381333932")
    bad = shop.admin.patch(
        f"/programs/{program['id']}", {"design": {"barcode_format": "ean13"}}, expect=422
    )
    assert bad["type"] == "/problems/validation-error"
    (problem,) = bad["errors"]
    assert problem["field"] == "body.design.barcode_format"
    assert "EAN-13 '4006381333932' has check digit 2" in problem["message"]
    # ITF needs an even number of digits: both numbers have 13.
    bad = shop.admin.patch(
        f"/programs/{program['id']}", {"design": {"barcode_format": "itf"}}, expect=422
    )
    assert "even number of digits" in bad["errors"][0]["message"]
    with runtime.transaction(shop.merchant_id) as s:
        assert "barcode_format" not in (s.get(Program, program["id"]).design or {})


def test_an_unknown_barcode_format_is_refused(client, runtime):
    shop = make_shop(runtime, client)
    program = new_program(shop, "points")
    bad = shop.admin.patch(
        f"/programs/{program['id']}", {"design": {"barcode_format": "upc"}}, expect=422
    )
    assert bad["type"] == "/problems/validation-error"
