"""Rendering pass.json, the Google class and the bundle files from a template."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from walletpass.passes import render, templates
from walletpass.passes.templates import FIELD_GROUPS, MissingVariableError, TemplateError
from walletpass.resources import PASS_TEMPLATES_DIR

ROOT = PASS_TEMPLATES_DIR
NAMES = ["coupon", "membership", "points_tiers", "stamp_card"]
FULL = dict(templates.SAMPLE_VARIABLES)


def load(name: str) -> templates.PassTemplate:
    return templates.load_template(templates.template_dir(ROOT, name))


def fields_of(pass_json: dict) -> dict[str, dict]:
    style = pass_json.get("storeCard") or pass_json["coupon"]
    return {f["key"]: f for group in FIELD_GROUPS for f in style.get(group, [])}


@pytest.fixture(params=NAMES)
def template(request) -> templates.PassTemplate:
    return load(request.param)


@pytest.fixture
def copied(tmp_path) -> Path:
    """A private copy of the points template, safe to edit."""
    folder = tmp_path / "points_copy"
    shutil.copytree(ROOT / "points_tiers", folder)
    return folder


def edit_pass_json(folder: Path, change) -> templates.PassTemplate:
    data = json.loads((folder / "pass.json").read_text(encoding="utf-8"))
    change(data)
    (folder / "pass.json").write_text(json.dumps(data), encoding="utf-8")
    return templates.load_template(folder)


def test_renders_with_full_variable_set(template):
    pj = render.render_pass_json(template, FULL)
    assert pj["formatVersion"] == 1
    assert pj["serialNumber"] == FULL["serial"]
    assert pj["passTypeIdentifier"] == FULL["pass_type_id"]
    assert pj["teamIdentifier"] == FULL["team_id"]
    assert pj["webServiceURL"] == FULL["web_service_url"]
    assert pj["authenticationToken"] == FULL["auth_token"]
    assert pj["backgroundColor"] == FULL["background_color"]
    assert "barcode" not in pj
    (barcode,) = pj["barcodes"]
    assert barcode == {
        "format": "PKBarcodeFormatQR",
        "message": FULL["barcode_message"],
        "messageEncoding": "iso-8859-1",
        "altText": FULL["barcode_alt_text"],
    }
    text = json.dumps(pj)
    assert "${" not in text
    assert '"optional"' not in text
    assert "voided" not in pj
    assert "expirationDate" not in pj
    assert "locations" not in pj
    style = pj[template.style]
    keys = [f["key"] for group in FIELD_GROUPS for f in style[group]]
    assert len(keys) == len(set(keys))
    assert len(style["secondaryFields"]) + len(style["auxiliaryFields"]) <= 4


def test_typed_values_stay_typed():
    fields = fields_of(render.render_pass_json(load("points_tiers"), FULL))
    assert fields["points"]["value"] == 1240
    assert fields["points"]["changeMessage"] == "You now have %@ points"
    coupon = fields_of(render.render_pass_json(load("coupon"), FULL))
    assert coupon["uses_left"]["value"] == 1
    # Zero is a value, not an absent field.
    zero = fields_of(render.render_pass_json(load("points_tiers"), {**FULL, "points": 0}))
    assert zero["points"]["value"] == 0


def test_interpolated_values_and_dates():
    stamps = fields_of(render.render_pass_json(load("stamp_card"), FULL))
    assert stamps["stamps"]["value"] == "4/10"
    membership = fields_of(render.render_pass_json(load("membership"), FULL))
    assert membership["valid_until"]["value"] == FULL["membership_valid_until"]
    assert membership["valid_until"]["dateStyle"] == "PKDateStyleMedium"
    aware = datetime(2026, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=1)))
    pj = render.render_pass_json(load("membership"), {**FULL, "membership_valid_until": aware})
    assert fields_of(pj)["valid_until"]["value"] == "2026-12-31T23:59:00+01:00"
    with pytest.raises(TemplateError, match="naive"):
        render.render_pass_json(
            load("membership"), {**FULL, "membership_valid_until": datetime(2026, 1, 1)}
        )


def test_numeric_barcode_message_becomes_a_string():
    pj = render.render_pass_json(load("coupon"), {**FULL, "barcode_message": 123456})
    assert pj["barcodes"][0]["message"] == "123456"


@pytest.mark.parametrize(
    ("name", "variable", "key"),
    [
        ("stamp_card", "offer_text", "offer"),
        ("stamp_card", "rewards_text", "reward"),
        ("stamp_card", "expiry_warning", "expiry"),
        ("stamp_card", "stamps_text", "stamps"),
        ("points_tiers", "next_tier_text", "next_tier"),
        ("points_tiers", "tier", "tier"),
        ("points_tiers", "points", "points"),
        ("membership", "membership_valid_until", "valid_until"),
        ("membership", "member_name", "member"),
        ("coupon", "coupon_valid_until", "valid_until"),
        ("coupon", "coupon_uses_left", "uses_left"),
        ("coupon", "expiry_warning", "expiry"),
    ],
)
@pytest.mark.parametrize("empty", [None, ""])
def test_optional_fields_drop_when_empty(name, variable, key, empty):
    template = load(name)
    assert key in fields_of(render.render_pass_json(template, FULL))
    fields = fields_of(render.render_pass_json(template, {**FULL, variable: empty}))
    assert key not in fields


def test_empty_offer_title_keeps_offer_without_label():
    fields = fields_of(render.render_pass_json(load("stamp_card"), {**FULL, "offer_title": ""}))
    assert fields["offer"] == {"key": "offer", "value": FULL["offer_text"], "changeMessage": "%@"}


def test_static_pass_drops_web_service_keys_and_empty_top_level_keys():
    variables = {**FULL, "web_service_url": "", "auth_token": "", "logo_text": None}
    pj = render.render_pass_json(load("coupon"), variables)
    assert "webServiceURL" not in pj
    assert "authenticationToken" not in pj
    assert "logoText" not in pj
    # Half a web service would make Wallet refuse the pass.
    pj = render.render_pass_json(load("coupon"), {**FULL, "auth_token": ""})
    assert "webServiceURL" not in pj


def test_empty_required_key_raises():
    with pytest.raises(TemplateError, match="serialNumber came out empty"):
        render.render_pass_json(load("coupon"), {**FULL, "serial": ""})


def test_unknown_placeholder_raises_naming_variable_and_template(template):
    variables = dict(FULL)
    del variables["organization_name"]
    with pytest.raises(MissingVariableError) as info:
        render.render_pass_json(template, variables)
    assert isinstance(info.value, KeyError)
    assert info.value.variable == "organization_name"
    assert info.value.template == template.name
    assert str(info.value) == (
        f"pass template {template.name!r} uses ${{organization_name}}, "
        "but no variable 'organization_name' was given"
    )
    with pytest.raises(MissingVariableError, match="organization_name"):
        render.render_google_class(template, variables)


def test_unknown_placeholder_in_a_new_template_raises(copied):
    def add_field(data):
        data["storeCard"]["backFields"].append({"key": "x", "label": "X", "value": "${nope}"})

    template = edit_pass_json(copied, add_field)
    with pytest.raises(KeyError, match=r"'points_copy' uses \$\{nope\}"):
        render.render_pass_json(template, FULL)


def test_extra_variables_are_ignored(template):
    pj = render.render_pass_json(template, {**FULL, "language": "zh-Hant", "status": "x"})
    assert "zh-Hant" not in json.dumps(pj)


def test_duplicate_field_key_raises(copied):
    def duplicate(data):
        data["storeCard"]["backFields"].append({"key": "points", "label": "X", "value": "y"})

    # Refused when the template is loaded, before any pass is rendered from it.
    with pytest.raises(TemplateError, match="field key 'points' is used in both"):
        edit_pass_json(copied, duplicate)


def test_singular_barcode_key_is_never_emitted(copied):
    def legacy(data):
        data["barcode"] = {"format": "PKBarcodeFormatQR", "message": "${barcode_message}"}

    pj = render.render_pass_json(edit_pass_json(copied, legacy), FULL)
    assert "barcode" not in pj
    assert pj["barcodes"]


def test_voided_expiration_and_locations():
    expires = datetime(2026, 5, 31, 21, 59, 59, tzinfo=UTC)
    locations = [
        {"latitude": 25.0330 + i / 1000, "longitude": 121.5654, "relevantText": f"Store {i}"}
        for i in range(12)
    ]
    locations[1] = {"latitude": "25.1", "longitude": "121.6"}
    pj = render.render_pass_json(
        load("coupon"), FULL, voided=True, expiration_date=expires, locations=locations
    )
    assert pj["voided"] is True
    assert pj["expirationDate"] == "2026-05-31T21:59:59+00:00"
    assert len(pj["locations"]) == 10
    assert pj["locations"][0] == {
        "latitude": 25.033,
        "longitude": 121.5654,
        "relevantText": "Store 0",
    }
    assert pj["locations"][1] == {"latitude": 25.1, "longitude": 121.6}
    with pytest.raises(ValueError, match="timezone-aware"):
        render.render_pass_json(load("coupon"), FULL, expiration_date=datetime(2026, 1, 1))


def test_render_does_not_mutate_the_template(template):
    before = json.dumps(template.pass_json, sort_keys=True)
    render.render_pass_json(template, {**FULL, "offer_text": ""}, voided=True)
    render.render_google_class(template, FULL)
    assert json.dumps(template.pass_json, sort_keys=True) == before


def test_result_shares_nothing_mutable_with_the_template(template):
    before = json.dumps(template.pass_json)
    first = render.render_pass_json(template, FULL)
    expected = json.loads(json.dumps(first))

    def scribble(obj) -> None:
        if isinstance(obj, dict):
            for value in list(obj.values()):
                scribble(value)
            obj["scribbled"] = True
        elif isinstance(obj, list):
            for value in obj:
                scribble(value)
            obj.append("scribbled")

    scribble(first)
    assert render.render_pass_json(template, FULL) == expected
    assert json.dumps(template.pass_json) == before
    google = render.render_google_class(template, FULL)
    if google is not None:
        wanted = json.loads(json.dumps(google))
        scribble(google)
        assert render.render_google_class(template, FULL) == wanted


def test_dumps_pass_json_is_compact_utf8():
    pj = render.render_pass_json(load("points_tiers"), FULL)
    data = render.dumps_pass_json(pj)
    assert "€1,200 to Gold".encode() in data
    assert json.loads(data) == pj
    assert data == json.dumps(pj, ensure_ascii=False, separators=(",", ":")).encode()


def test_google_class_optional_parts_drop():
    cls = render.render_google_class(load("coupon"), {**FULL, "website_url": "", "terms": None})
    assert "homepageUri" not in cls
    assert "finePrint" not in cls
    assert [m["id"] for m in cls["textModulesData"]] == ["how_to_use"]
    assert "optional" not in json.dumps(cls)


def test_bundle_files_for_static_templates(template):
    if template.meta.get("dynamic_strip"):
        pytest.skip("stamp card strips are dynamic")
    files, hashes = render.bundle_files(template, FULL)
    assert files == dict(template.static_files)
    assert hashes == dict(template.static_hashes)
    assert not {"pass.json", "manifest.json", "signature"} & set(files)
    # Callers may add to what they get back without corrupting the template.
    files["pass.json"] = b"{}"
    assert "pass.json" not in template.static_files


def strip_of(files: dict[str, bytes], name: str = "strip@3x.png") -> Image.Image:
    return Image.open(io.BytesIO(files[name]))


def test_stamp_strip_changes_with_stamps_and_is_cached():
    template = load("stamp_card")
    render.stamp_strip_files.cache_clear()
    four, four_hashes = render.bundle_files(template, FULL)
    five, five_hashes = render.bundle_files(template, {**FULL, "stamps": 5})
    for name in ("strip.png", "strip@2x.png", "strip@3x.png"):
        assert four[name] != five[name]
        assert four_hashes[name] != five_hashes[name]
        assert four[name] != template.static_files[name]
        assert four_hashes[name] == hashlib.sha1(four[name], usedforsecurity=False).hexdigest()
        assert len(four[name]) < 60_000
    assert strip_of(four).size == (1125, 432)
    assert strip_of(four, "strip@2x.png").size == (750, 288)
    assert strip_of(four, "strip.png").size == (375, 144)
    again, _ = render.bundle_files(template, {**FULL, "serial": "other pass"})
    assert again["strip@3x.png"] is four["strip@3x.png"]
    info = render.stamp_strip_files.cache_info()
    assert (info.hits, info.misses) == (1, 2)
    # Everything but the strip is the template's, shared, never re-read.
    assert four["icon.png"] is template.static_files["icon.png"]


def test_stamp_strip_depends_on_goal_and_clamps():
    template = load("stamp_card")
    eight, _ = render.bundle_files(template, {**FULL, "stamps": 4, "stamps_goal": 8})
    ten, _ = render.bundle_files(template, FULL)
    assert eight["strip.png"] != ten["strip.png"]
    full, _ = render.bundle_files(template, {**FULL, "stamps": 10})
    over, _ = render.bundle_files(template, {**FULL, "stamps": 14})
    assert Image.open(io.BytesIO(over["strip.png"])).tobytes() == (
        Image.open(io.BytesIO(full["strip.png"])).tobytes()
    )


def test_stamp_strip_falls_back_to_static_without_a_count():
    template = load("stamp_card")
    files, hashes = render.bundle_files(template, {**FULL, "stamps": None})
    assert files["strip.png"] == template.static_files["strip.png"]
    assert hashes == dict(template.static_hashes)
    variables = dict(FULL)
    del variables["stamps_goal"]
    with pytest.raises(MissingVariableError, match="stamps_goal"):
        render.bundle_files(template, variables)


def test_full_build_is_fast(template):
    # A pass build re-uses loaded bytes and hashes: no file reads, no hashing of statics.
    render.bundle_files(template, FULL)
    start = datetime.now(UTC)
    for _ in range(200):
        render.render_pass_json(template, FULL)
        render.bundle_files(template, FULL)
    assert datetime.now(UTC) - start < timedelta(seconds=1)
