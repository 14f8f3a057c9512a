"""What Wallet would refuse, refused first with a message that says what to fix: the
barcode formats and their messages, and the template checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from walletpass.google.objects import barcode as google_barcode
from walletpass.passes import barcodes, render, templates, wallet_rules
from walletpass.passes.templates import TemplateError
from walletpass.resources import PASS_TEMPLATES_DIR

FULL = dict(templates.SAMPLE_VARIABLES)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("ean13", "4006381333931"),
        ("ean13", "0000000000000"),
        ("itf", "12345678"),
        ("itf", "00"),
        ("code39", "CARD-42 $/+%."),
        ("codabar", "A12345-678B"),
        ("codabar", "31117013206375"),
        ("qr", "WP-7Q4M-2K9X anything"),
    ],
)
def test_messages_that_fit_their_format(fmt, message):
    barcodes.check_message(fmt, message)


@pytest.mark.parametrize(
    ("fmt", "message", "says"),
    [
        ("ean13", "4006381333932", "check digit 2; its first twelve digits need 1"),
        ("ean13", "400638133393", "exactly 13 digits"),
        ("ean13", "40063813339A1", "exactly 13 digits"),
        ("itf", "1234567", "even number of digits"),
        ("itf", "12AB", "even number of digits"),
        ("code39", "card-42", "capital letters"),
        ("codabar", "12*34", "digits and - $ : / . +"),
        ("pdf", "1", "unknown barcode format"),
    ],
)
def test_messages_that_do_not_fit_say_why(fmt, message, says):
    with pytest.raises(
        barcodes.BarcodeFormatError,
        match=says.replace("$", r"\$").replace("+", r"\+").replace(".", r"\."),
    ):
        barcodes.check_message(fmt, message)


def test_ean13_check_digit():
    assert barcodes.ean13_check_digit("400638133393") == 1
    assert barcodes.ean13_check_digit("978030640615") == 7


@pytest.mark.parametrize(
    ("fmt", "google"),
    [("ean13", "EAN_13"), ("code39", "CODE_39"), ("codabar", "CODABAR"), ("itf", "ITF_14")],
)
def test_google_gets_the_same_symbology(fmt, google):
    number = {"ean13": "4006381333931", "code39": "CARD42", "codabar": "A123B", "itf": "1234"}[fmt]
    variables = {**FULL, "barcode_format": fmt, "card_number": number}
    assert google_barcode(variables) == {"type": google, "value": number, "alternateText": number}


def test_google_keeps_the_qr_code_when_the_number_does_not_fit():
    variables = {**FULL, "barcode_format": "ean13", "card_number": "123"}
    assert google_barcode(variables)["type"] == "QR_CODE"
    assert google_barcode(variables)["value"] == FULL["barcode_message"]


# --- template checks ------------------------------------------------------------------


@pytest.fixture
def copied(tmp_path) -> Path:
    folder = tmp_path / "coupon_copy"
    shutil.copytree(PASS_TEMPLATES_DIR / "coupon", folder)
    return folder


def edit(folder: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((folder / name).read_text(encoding="utf-8"))
    change(data)
    (folder / name).write_text(json.dumps(data), encoding="utf-8")


def field(key: str) -> dict:
    return {"key": key, "label": key.upper(), "value": "x"}


@pytest.mark.parametrize(
    ("name", "change", "says"),
    [
        (
            "pass.json",
            lambda d: d.update(storeCard={"primaryFields": []}),
            "needs exactly one style key of ('storeCard', 'coupon'), found ['storeCard', 'coupon']",
        ),
        (
            "pass.json",
            lambda d: d["coupon"]["backFields"].append(field("discount")),
            "field key 'discount' is used in both coupon.primaryFields and coupon.backFields",
        ),
        (
            "pass.json",
            lambda d: d["coupon"]["auxiliaryFields"].extend([field("a"), field("b"), field("c")]),
            "coupon has 6 secondary and auxiliary fields together; a coupon shows at most 4",
        ),
        (
            "pass.json",
            lambda d: d["coupon"]["headerFields"].extend([field("h1"), field("h2"), field("h3")]),
            "coupon.headerFields has 4 fields; Wallet shows at most 3",
        ),
        (
            "pass.json",
            lambda d: d["featuredActions"].extend(
                [
                    {"identifier": "b", "type": "call", "url": "tel:+30"},
                    {"identifier": "c", "type": "shop", "url": "https://x.test"},
                ]
            ),
            "featuredActions has 3 actions; Wallet shows at most 2",
        ),
        (
            "pass.json",
            lambda d: d["featuredActions"].append({"identifier": "z", "type": "dance", "url": "u"}),
            "featured action type 'dance' is unknown",
        ),
        (
            "pass.json",
            lambda d: d["barcodes"][0].update(format="PKBarcodeFormatUPC"),
            "barcode format 'PKBarcodeFormatUPC' is not one Wallet draws",
        ),
        (
            "pass.json",
            lambda d: d["barcodes"][0].update(format="PKBarcodeFormatEAN13"),
            "add a PKBarcodeFormatQR entry after it as the fallback",
        ),
        (
            "pass.json",
            lambda d: d.update(locations=[{"latitude": 1.0, "longitude": 2.0}] * 11),
            "locations has 11 entries; Wallet reads at most 10",
        ),
        (
            "pass.json",
            lambda d: d["coupon"]["backFields"].append(
                {"key": "price", "label": "P", "value": "two euros", "currencyCode": "EUR"}
            ),
            "field 'price' has currencyCode but its value 'two euros' is not a number",
        ),
        (
            "poster.json",
            lambda d: d["posterGeneric"].update(footerFields=[field("f1"), field("f2")]),
            "poster.json: posterGeneric.footerFields has 2 fields; the poster face shows at most 1",
        ),
        (
            "poster.json",
            lambda d: d.pop("generic"),
            "poster.json must hold exactly posterGeneric and generic (missing: generic",
        ),
        (
            "poster.json",
            lambda d: d["generic"]["headerFields"].append(field("discount")),
            "field key 'discount' is used in both generic.headerFields and generic.primaryFields",
        ),
    ],
)
def test_a_template_wallet_would_refuse_is_refused_with_what_to_fix(copied, name, change, says):
    edit(copied, name, change)
    with pytest.raises(TemplateError) as caught:
        templates.load_template(copied)
    assert says in str(caught.value)


def test_poster_with_one_classic_style_beside_it_is_wallets_rule():
    # Apple's "Creating a poster generic pass": posterGeneric plus one classic style.
    base = {"barcodes": [{"format": "PKBarcodeFormatQR", "message": "x"}]}
    assert wallet_rules.problems({**base, "posterGeneric": {}, "generic": {}}) == []
    assert wallet_rules.problems({**base, "posterGeneric": {}, "coupon": {}}) == []
    assert wallet_rules.problems({**base, "posterGeneric": {}})
    assert wallet_rules.problems({**base, "posterGeneric": {}, "generic": {}, "storeCard": {}})


def test_a_number_style_on_a_rendered_text_value_is_refused(copied):
    edit(
        copied,
        "pass.json",
        lambda d: d["coupon"]["backFields"].append(
            {
                "key": "worth",
                "label": "W",
                "value": "${coupon_discount}",
                "numberStyle": "PKNumberStyleDecimal",
            }
        ),
    )
    template = templates.load_template(copied)  # a placeholder may still be a number
    with pytest.raises(
        TemplateError, match="field 'worth' has numberStyle but its value '20% off'"
    ):
        render.render_pass_json(template, FULL)


@pytest.mark.parametrize("name", ["coupon", "membership", "points_tiers", "stamp_card"])
def test_every_shipped_template_has_a_poster_layout_wallet_accepts(name):
    template = templates.load_template(templates.template_dir(PASS_TEMPLATES_DIR, name))
    assert template.poster is not None
    pj = render.render_pass_json(template, {**FULL, "poster_style": True})
    assert wallet_rules.problems(pj, rendered=True) == []
    assert wallet_rules.style_keys(pj) == ["generic", "posterGeneric"]
