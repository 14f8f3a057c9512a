"""The committed pass templates: structure, images, localization, Google class schema."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import googleapiclient
import pytest
from PIL import Image

from walletpass.passes import render, templates
from walletpass.passes.templates import FIELD_GROUPS, TemplateError
from walletpass.resources import PASS_TEMPLATES_DIR

ROOT = PASS_TEMPLATES_DIR
NAMES = ["coupon", "membership", "points_tiers", "stamp_card"]
LANGUAGES = ("en", "el", "zh-Hans", "zh-Hant")
DISCOVERY = (
    Path(googleapiclient.__file__).parent
    / "discovery_cache"
    / "documents"
    / "walletobjects.v1.json"
)

# Apple's image sizes in px at 1x/2x/3x (specs/apple-wallet.md section 1).
IMAGE_SIZES = {
    "icon": (29, 29),
    "logo": (160, 50),
    "strip": (375, 144),
}

# Variables whose value changes over a card's life; a field showing one needs a
# changeMessage with %@ or the customer gets no (or a generic) lock-screen notice.
CHANGING = {
    "points",
    "stamps",
    "stamps_left",
    "stamps_text",
    "tier",
    "tier_discount",
    "next_tier_text",
    "membership_valid_until",
    "offer_text",
    "coupon_discount",
    "coupon_valid_until",
    "coupon_uses_left",
    "expiry_warning",
    "rewards_text",
}

STRINGS_LINE = re.compile(r'^"((?:[^"\\]|\\.)*)" = "((?:[^"\\]|\\.)*)";$')


def parse_strings(data: bytes) -> dict[str, str]:
    """Every line must be ``"key" = "value";``: the format pass.strings files use."""
    out: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        match = STRINGS_LINE.match(line)
        assert match, f"line {number} is not a pass.strings entry: {line!r}"
        key, value = (
            s.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") for s in match.groups()
        )
        assert key not in out, f"duplicate key {key!r}"
        out[key] = value
    return out


def all_fields(pass_json: dict, style: str):
    for group in FIELD_GROUPS:
        for field in pass_json[style].get(group, []):
            yield group, field


@pytest.fixture(params=NAMES)
def template(request) -> templates.PassTemplate:
    return templates.load_template(templates.template_dir(ROOT, request.param))


def test_list_templates():
    assert templates.list_templates(ROOT) == NAMES


def test_template_dir_rejects_unknown_and_escaping_names():
    with pytest.raises(TemplateError, match="unknown pass template 'nope'"):
        templates.template_dir(ROOT, "nope")
    for bad in ("..", "../pass_templates", "", "a/b"):
        with pytest.raises(TemplateError):
            templates.template_dir(ROOT, bad)


def test_load_template_is_cached_on_resolved_path():
    first = templates.load_template(ROOT / "coupon")
    assert templates.load_template(str(ROOT / "." / "coupon")) is first


def test_metadata_matches_style(template):
    assert template.style in ("storeCard", "coupon")
    assert template.meta["style"] == template.style
    assert template.meta["program_kinds"]
    expected = "coupon" if template.name == "coupon" else "storeCard"
    assert template.style == expected


def test_pass_json_structure(template):
    pj = template.pass_json
    assert pj["formatVersion"] == 1
    assert "barcode" not in pj
    (barcode,) = pj["barcodes"]
    assert barcode["format"] == "PKBarcodeFormatQR"
    assert barcode["messageEncoding"] == "iso-8859-1"
    assert isinstance(barcode["message"], str)
    assert barcode["altText"]
    style = pj[template.style]
    assert len(style["headerFields"]) <= 3
    assert len(style["primaryFields"]) == 1
    assert len(style["secondaryFields"]) + len(style["auxiliaryFields"]) <= 4
    keys = [field["key"] for _, field in all_fields(pj, template.style)]
    assert len(keys) == len(set(keys)), keys
    back = {field["key"] for field in style["backFields"]}
    assert {"terms", "how_to_use", "website"} <= back


def test_placeholders_are_all_documented(template):
    used = templates.placeholders(template.pass_json) | templates.placeholders(
        template.google_class
    )
    assert used <= templates.VARIABLES, used - templates.VARIABLES
    readme = (Path(__file__).resolve().parents[2] / "docs" / "pass-templates.md").read_text(
        encoding="utf-8"
    )
    for name in templates.VARIABLES:
        assert f"`{name}`" in readme, f"{name} is not documented in docs/pass-templates.md"


def test_changing_fields_have_change_messages(template):
    for group, field in all_fields(template.pass_json, template.style):
        shown = templates.placeholders(field.get("value"))
        if shown & CHANGING:
            message = field.get("changeMessage", "")
            assert "%@" in message, f"{template.name} {group} {field['key']} needs changeMessage"


def test_date_fields_use_date_style(template):
    for _, field in all_fields(template.pass_json, template.style):
        if templates.placeholders(field.get("value")) & {
            "membership_valid_until",
            "coupon_valid_until",
        }:
            assert field["dateStyle"].startswith("PKDateStyle")


@pytest.mark.parametrize("kind", sorted(IMAGE_SIZES))
def test_image_sizes(template, kind):
    width, height = IMAGE_SIZES[kind]
    for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
        name = f"{kind}{suffix}.png"
        data = template.static_files[name]
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.size == (width * scale, height * scale), name
        if kind == "strip":
            assert len(data) < 60_000, f"{template.name}/{name} is {len(data)} bytes"


def test_static_files_exclude_non_bundle_files(template):
    names = set(template.static_files)
    assert not names & {"pass.json", "template.json", "google_class.json", "README.md"}
    assert {f"{lang}.lproj/pass.strings" for lang in LANGUAGES} <= names
    assert set(template.static_hashes) == names
    assert all(re.fullmatch(r"[0-9a-f]{40}", h) for h in template.static_hashes.values())


def test_strings_cover_every_label_and_change_message(template):
    wanted = set()
    for _, field in all_fields(template.pass_json, template.style):
        for attr in ("label", "changeMessage"):
            text = field.get(attr)
            # "${offer_title}" labels are the merchant's own words, not translatable here.
            if text and not templates.placeholders(text):
                wanted.add(text)
    tables = {
        lang: parse_strings(template.static_files[f"{lang}.lproj/pass.strings"])
        for lang in LANGUAGES
    }
    for lang, table in tables.items():
        missing = wanted - set(table)
        assert not missing, f"{template.name} {lang} lacks {sorted(missing)}"
        for key, value in table.items():
            assert value.count("%@") == key.count("%@"), (lang, key)
    assert all(tables["en"][k] == k for k in wanted)
    # Every language has the English file's keys, no fewer and no more: a key only one
    # language has is a label renamed in pass.json and forgotten there.
    for lang, table in tables.items():
        assert set(table) == set(tables["en"]), (template.name, lang)
    # Real translations: every text in Chinese characters or Greek letters, not English.
    scripts = {
        "zh-Hant": r"[\u4e00-\u9fff]",
        "zh-Hans": r"[\u4e00-\u9fff]",
        "el": r"[\u0370-\u03ff]",
    }
    for lang, script in scripts.items():
        for key in set(tables["en"]) - {"%@"}:
            assert re.search(script, tables[lang][key]), (lang, key)
            assert not re.search(r"[A-Za-z]{2,}", tables[lang][key]), (lang, key)
    # Traditional and Simplified are two scripts, not one table copied.
    assert tables["zh-Hans"] != tables["zh-Hant"]


def test_google_class_fixed_texts_carry_every_language(template):
    """A class is shared by every holder of a program: Google shows each holder the
    translatedValue of their phone's language, so each fixed text carries all of ours."""
    if template.google_class is None:
        return
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "defaultValue" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template.google_class)
    assert found
    for localized in found:
        languages = {v["language"] for v in localized.get("translatedValues", [])}
        assert languages == {"el", "zh-Hans", "zh-Hant"}, localized["defaultValue"]


def test_missing_icon_or_pass_json_is_rejected(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    with pytest.raises(TemplateError, match=r"no pass\.json"):
        templates.load_template(folder)
    (folder / "pass.json").write_text('{"formatVersion": 1, "storeCard": {}}')
    (folder / "icon.png").write_bytes(b"x")
    with pytest.raises(TemplateError, match=r"icon@2x\.png, icon@3x\.png"):
        templates.load_template(folder)


def test_junk_files_are_not_bundled(tmp_path):
    folder = tmp_path / "junk"
    (folder / "en.lproj").mkdir(parents=True)
    (folder / "__MACOSX").mkdir()
    (folder / "pass.json").write_text('{"formatVersion": 1, "coupon": {}}')
    for name in ("icon.png", "icon@2x.png", "icon@3x.png", ".DS_Store", "README.md"):
        (folder / name).write_bytes(b"x")
    (folder / "en.lproj" / ".DS_Store").write_bytes(b"x")
    (folder / "en.lproj" / "pass.strings").write_bytes(b'"A" = "A";\n')
    (folder / "__MACOSX" / "icon.png").write_bytes(b"x")
    template = templates.load_template(folder)
    assert template.style == "coupon"
    assert sorted(template.static_files) == [
        "en.lproj/pass.strings",
        "icon.png",
        "icon@2x.png",
        "icon@3x.png",
    ]


# Google class templates against Google's discovery document.


@pytest.fixture(scope="module")
def discovery() -> dict:
    return json.loads(DISCOVERY.read_text(encoding="utf-8"))["schemas"]


def schema_problems(value, prop: dict, schemas: dict, path: str) -> list[str]:
    """Names, nesting, JSON types and enums of ``value`` against a discovery property."""
    if "$ref" in prop:
        schema = schemas[prop["$ref"]]
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({prop['$ref']})"]
        problems = []
        for key, item in value.items():
            if key not in schema.get("properties", {}):
                problems.append(f"{path}.{key}: not a field of {prop['$ref']}")
                continue
            problems += schema_problems(item, schema["properties"][key], schemas, f"{path}.{key}")
        return problems
    kind = prop.get("type")
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected an array"]
        return [
            p
            for i, item in enumerate(value)
            for p in schema_problems(item, prop["items"], schemas, f"{path}[{i}]")
        ]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        if "enum" in prop and value not in prop["enum"]:
            return [f"{path}: {value!r} not in {prop['enum']}"]
        deprecated = dict(zip(prop.get("enum", []), prop.get("enumDeprecated", []), strict=False))
        if deprecated.get(value):
            return [f"{path}: {value!r} is a deprecated alias"]
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{path}: expected a boolean"]
    return []


def without_markers(obj):
    """The template minus the renderer's own ``"optional": true`` marker."""
    if isinstance(obj, dict):
        return {k: without_markers(v) for k, v in obj.items() if k != "optional"}
    if isinstance(obj, list):
        return [without_markers(v) for v in obj]
    return obj


def test_google_class_keys_exist_in_discovery_schema(template, discovery):
    expected = "OfferClass" if template.style == "coupon" else "LoyaltyClass"
    variables = templates.SAMPLE_VARIABLES
    rendered = render.render_google_class(template, variables)
    assert rendered is not None
    assert schema_problems(rendered, {"$ref": expected}, discovery, expected) == []
    raw = without_markers(template.google_class)
    assert schema_problems(raw, {"$ref": expected}, discovery, expected) == []
    assert rendered["reviewStatus"] == "UNDER_REVIEW"
    assert rendered["id"] == variables["google_class_id"]
    assert rendered["hexBackgroundColor"] == variables["background_hex"]
    assert rendered["programLogo" if expected == "LoyaltyClass" else "titleImage"] == {
        "sourceUri": {"uri": variables["logo_url"]},
        "contentDescription": {
            "defaultValue": {"language": "en", "value": "Bean There Coffee logo"},
            "translatedValues": [
                {"language": "el", "value": "Λογότυπο Bean There Coffee"},
                {"language": "zh-Hans", "value": "Bean There Coffee 标志"},
                {"language": "zh-Hant", "value": "Bean There Coffee 標誌"},
            ],
        },
    }


def test_schema_check_catches_unknown_fields(discovery):
    bad = {"id": "1.x", "programLogo": {"sourceUri": {"url": "https://x"}}, "state": "ACTIVE"}
    problems = schema_problems(bad, {"$ref": "LoyaltyClass"}, discovery, "LoyaltyClass")
    assert problems == [
        "LoyaltyClass.programLogo.sourceUri.url: not a field of ImageUri",
        "LoyaltyClass.state: not a field of LoyaltyClass",
    ]


def test_google_class_has_traditional_chinese_labels(template):
    text = json.dumps(template.google_class, ensure_ascii=False)
    assert '"language": "zh-Hant"' in text
    assert re.search(r"[\u4e00-\u9fff]", text)
