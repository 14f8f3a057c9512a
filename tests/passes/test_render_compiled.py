"""The compiled template renderer equals the plain template walk, value for value."""

from __future__ import annotations

import copy
import io
import itertools
import json
import random
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from walletpass.passes import pkpass, render, templates
from walletpass.resources import PASS_TEMPLATES_DIR

ROOT = PASS_TEMPLATES_DIR
NAMES = ["coupon", "membership", "points_tiers", "stamp_card"]
FULL = dict(templates.SAMPLE_VARIABLES)
ODD_VALUES: tuple[Any, ...] = (
    None,
    "",
    0,
    0.0,
    False,
    True,
    -3,
    2.5,
    "text",
    "€ ünïcode 標誌",
    "${not_a_variable}",
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 1, 2, 3, 4, 5),  # naive: an error wherever it is used
    date(2026, 7, 1),
    [1, 2],
    {"nested": "x"},
)


def load(name: str) -> templates.PassTemplate:
    return templates.load_template(templates.template_dir(ROOT, name))


def fresh(template: templates.PassTemplate, **changes: Any) -> templates.PassTemplate:
    """An uncached copy of ``template`` (its own render cache)."""
    fields = {
        "name": template.name,
        "path": template.path,
        "style": template.style,
        "pass_json": copy.deepcopy(template.pass_json),
        "static_files": template.static_files,
        "static_hashes": template.static_hashes,
        "google_class": copy.deepcopy(template.google_class),
        "meta": template.meta,
    }
    fields.update(changes)
    return templates.PassTemplate(**fields)


def outcome(fn, *args, **kwargs) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # comparing exactly what each path raises
        return "raised", (type(exc), str(exc))


_REFERENCES: dict[int, tuple[templates.PassTemplate, templates.PassTemplate]] = {}


def reference_pass_json(template: templates.PassTemplate, variables, **kwargs) -> tuple:
    pair = _REFERENCES.get(id(template))
    if pair is None or pair[0] is not template:
        ref = fresh(template)
        ref.render_cache[render._PLAN_KEY] = render._NO_PLAN  # forces the plain walk
        pair = _REFERENCES[id(template)] = (template, ref)
    return outcome(render.render_pass_json, pair[1], variables, **kwargs)


def reference_google(template: templates.PassTemplate, variables) -> tuple:
    if template.google_class is None:
        return "ok", None

    def fill():
        return render._Filler(template, variables).fill(template.google_class)[0]

    return outcome(fill)


def assert_same(template: templates.PassTemplate, variables, **kwargs) -> None:
    got = outcome(render.render_pass_json, template, variables, **kwargs)
    want = reference_pass_json(template, variables, **kwargs)
    assert got == want
    if got[0] == "ok":
        # Same key order too: it decides the bytes that are hashed and signed.
        assert render.dumps_pass_json(got[1]) == render.dumps_pass_json(want[1])
    google = outcome(render.render_google_class, template, variables)
    assert google == reference_google(template, variables)
    if google[0] == "ok" and google[1] is not None:
        assert json.dumps(google[1]) == json.dumps(reference_google(template, variables)[1])


@pytest.fixture(params=NAMES)
def template(request) -> templates.PassTemplate:
    return load(request.param)


def test_compiled_plan_is_used_for_every_shipped_template(template):
    render.render_pass_json(template, FULL)
    assert template.render_cache[render._PLAN_KEY] is not render._NO_PLAN


def test_each_variable_alone_takes_every_odd_value(template):
    used = sorted(templates.placeholders(template.pass_json) | {"organization_name"})
    for name in used:
        for value in ODD_VALUES:
            assert_same(template, {**FULL, name: value})
        missing = dict(FULL)
        del missing[name]
        assert_same(template, missing)


def test_random_combinations(template):
    rng = random.Random(f"walletpass-{template.name}")
    used = sorted(templates.placeholders(template.pass_json))
    for _ in range(300):
        variables = dict(FULL)
        for name in rng.sample(used, rng.randint(1, len(used))):
            variables[name] = rng.choice(ODD_VALUES)
        assert_same(template, variables)


def test_pairs_of_emptied_variables(template):
    used = sorted(templates.placeholders(template.pass_json))
    for a, b in itertools.combinations(used, 2):
        assert_same(template, {**FULL, a: "", b: None})


def test_keyword_options_match(template):
    expires = datetime(2026, 5, 31, 21, 59, 59, tzinfo=UTC)
    locations = [{"latitude": 1, "longitude": 2, "relevantText": "here"}]
    assert_same(template, FULL, voided=True, expiration_date=expires, locations=locations)


def test_result_shares_nothing_mutable_with_the_template(template):
    before = json.dumps(template.pass_json)
    first = render.render_pass_json(template, FULL)
    expected = json.loads(json.dumps(first))

    def scribble(obj: Any) -> None:
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


SYNTHETIC = {
    "formatVersion": 1,
    "passTypeIdentifier": "${pass_type_id}",
    "teamIdentifier": "${team_id}",
    "serialNumber": "S-${serial}-${points}",
    "organizationName": "${organization_name}",
    "description": "${description}",
    "webServiceURL": "${web_service_url}",
    "authenticationToken": "${auth_token}",
    "nothing": None,
    "blank": "",
    "constant": {"a": [1, {"b": None, "c": ""}, {"d": "x", "optional": True}], "e": "${}"},
    "userInfo": {
        "tier": "${tier}",
        "maybe": {"x": "${offer_text}", "optional": True},
        "list": ["${points}", {"y": "${offer_title}", "optional": True}, None, ""],
        "deep": {"k": {"m": "${rewards_text} and ${expiry_warning}"}},
    },
    "barcodes": [
        {"format": "PKBarcodeFormatQR", "message": "${barcode_message}", "altText": ""},
        {"format": "PKBarcodeFormatQR", "message": "${points}", "altText": "${points}"},
        {"format": "PKBarcodeFormatQR", "message": ""},
    ],
    "barcode": {"message": "${barcode_message}"},
    "storeCard": {
        "transitType": "${tier}",
        "extra": {"optional": True, "v": "${offer_text}"},
        "headerFields": [],
        "primaryFields": [
            {"key": "p", "value": "${points}", "optional": True},
            {"key": "const", "label": "L", "value": "constant text"},
            {"key": "none", "label": "L", "value": None},
            {"key": "novalue", "label": "L"},
        ],
        "secondaryFields": [
            {"key": "s", "label": "${offer_title}", "value": "${stamps}/${stamps_goal}"},
            {"key": "dict", "value": {"inner": "${offer_text}"}},
            {"key": "odict", "value": {"inner": "${offer_text}", "optional": True}},
            {"key": "list", "value": ["${offer_text}", 1]},
        ],
        "backFields": [
            {"key": "b", "label": "B", "value": "${terms}", "attributed": {"a": "${tier}"}},
        ],
    },
}


def test_synthetic_template_shapes():
    base = load("points_tiers")
    template = fresh(base, pass_json=copy.deepcopy(SYNTHETIC), google_class=SYNTHETIC)
    assert_same(template, FULL)
    assert template.render_cache[render._PLAN_KEY] is not render._NO_PLAN
    rng = random.Random("synthetic")
    used = sorted(templates.placeholders(SYNTHETIC))
    for _ in range(500):
        variables = dict(FULL)
        for name in rng.sample(used, rng.randint(1, len(used))):
            variables[name] = rng.choice(ODD_VALUES)
        assert_same(template, variables)


@pytest.mark.parametrize(
    "change",
    [
        lambda pj: pj["storeCard"].__setitem__("backFields", {"not": "a list"}),
        lambda pj: pj["storeCard"].__setitem__("backFields", ["not a field"]),
        lambda pj: pj.__setitem__("storeCard", ["not", "a", "dict"]),
        lambda pj: pj.__setitem__("barcodes", {"message": "${barcode_message}"}),
        lambda pj: pj.__setitem__("barcodes", ["${barcode_message}"]),
    ],
)
def test_odd_shapes_fail_like_the_reference(change):
    base = load("points_tiers")
    pass_json = copy.deepcopy(base.pass_json)
    change(pass_json)
    template = fresh(base, pass_json=pass_json)
    assert_same(template, FULL)


class _FakeSigner:
    def sign(self, data: bytes) -> bytes:
        return b"signature over " + data[:16]


def test_spliced_manifest_and_flat_zip_match_the_plain_forms(template):
    for points in (0, 1240):
        variables = {**FULL, "points": points}
        pass_json = render.dumps_pass_json(render.render_pass_json(template, variables))
        files, hashes = render.bundle_files(template, variables)
        for order in (files, dict(reversed(list(files.items())))):
            parts = pkpass.build_pkpass(pass_json, order, hashes, _FakeSigner())
            expected = pkpass.manifest_bytes({**hashes, "pass.json": pkpass.sha1_hex(pass_json)})
            assert parts.manifest == expected
            with zipfile.ZipFile(io.BytesIO(parts.zip_bytes)) as zf:
                assert zf.testzip() is None
                names = [info.filename for info in zf.infolist()]
                assert names == [*sorted(files), "pass.json", "manifest.json", "signature"]
                assert zf.read("pass.json") == pass_json
                assert zf.read("manifest.json") == expected
                assert zf.read("signature") == parts.signature
                for name, data in files.items():
                    assert zf.read(name) == data
            again = pkpass.assemble_pkpass(pass_json, parts.manifest, parts.signature, files)
            assert again == parts.zip_bytes
