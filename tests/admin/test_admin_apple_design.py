"""The program page's Apple Wallet settings: poster style and barcode format, saved on
the design, shown again, and refused with a message (nothing saved) when they cannot be met."""

from __future__ import annotations

import json

import factories
from test_admin_programs import FORM
from test_admin_support import make_shop, post, sign_in

from walletpass.loyalty.models import Program
from walletpass.passes.models import Pass


def _form(program: Program, **changes: str) -> dict[str, str]:
    return {
        **FORM,
        "kind": "points",
        "slug": program.slug,
        "rules": json.dumps(program.rules),
        **changes,
    }


def test_poster_style_and_barcode_format_are_saved_and_refresh_the_cards(  # type: ignore[no-untyped-def]
    client, runtime, settings
):
    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        member = factories.member(s, program, external_id="4006381333931")
        pass_id = factories.member_pass(s, settings, member).id
        form = _form(program, poster_style="on", barcode_format="ean13")
    sign_in(client, shop.emails["marketer"])
    assert post(client, f"/admin/programs/{shop.program_id}", form).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        design = s.get(Program, shop.program_id).design
        assert design["poster_style"] is True
        assert design["barcode_format"] == "ean13"
        assert s.get(Pass, pass_id).version == 2
    page = client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True)
    assert 'name="poster_style" value="on" checked' in page
    assert '<option value="ean13" selected>' in page
    # Unticked and back to QR: both leave the design.
    form.pop("poster_style")
    form["barcode_format"] = "qr"
    assert post(client, f"/admin/programs/{shop.program_id}", form).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        design = s.get(Program, shop.program_id).design
        assert "poster_style" not in design
        assert "barcode_format" not in design


def test_a_format_a_card_number_does_not_fit_is_refused(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        factories.member(s, program, external_id="12345")
        form = _form(program, barcode_format="itf")
    sign_in(client, shop.emails["marketer"])
    r = post(client, f"/admin/programs/{shop.program_id}", form)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert "card numbers do not fit this barcode format" in body
    assert "even number of digits" in body
    with runtime.transaction(shop.merchant_id) as s:
        assert "barcode_format" not in (s.get(Program, shop.program_id).design or {})
