"""Programs: rules validation, design changes reaching member passes, images, preview."""

from __future__ import annotations

import io
import json

import factories
import pytest
from markupsafe import escape
from PIL import Image
from sqlalchemy import select
from test_admin_support import make_shop, post, sign_in

from walletpass.admin import designs
from walletpass.apple.models import Device, Registration
from walletpass.jobs.models import Job
from walletpass.loyalty.models import Program
from walletpass.passes.models import Pass

FORM = {
    "name": "Coffee Club",
    "slug": "coffee-club",
    "kind": "tiers",
    "template": "points_tiers",
    "background": "#3b2418",
    "foreground": "#ffffff",
    "label": "#e9c8a0",
    "logo_text": "Bean There",
}


def png(width: int, height: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


def programs(runtime, merchant_id):  # type: ignore[no-untyped-def]
    with runtime.transaction(merchant_id) as s:
        return list(s.scalars(select(Program).order_by(Program.id)))


def test_bad_rules_show_every_error_and_save_nothing(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    rules = {
        "amount_per_point": "-1",
        "levels": [{"name": "Member", "min_spend": "0"}, {"name": "Gold", "min_spend": "abc"}],
        "multipliers": [
            {"kind": "window", "days": ["mon"], "start": "10:00", "end": "09:00", "factor": "50"}
        ],
    }
    r = post(client, "/admin/programs/new", {**FORM, "rules": json.dumps(rules)})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    from walletpass.loyalty.rules import RulesError, validate_rules

    try:
        validate_rules("tiers", rules)
    except RulesError as exc:
        expected = exc.errors
    assert len(expected) >= 3
    for err in expected:
        assert f'data-field="rules.{err["field"]}"' in body
        assert str(escape(err["message"])) in body
    assert "Nothing was saved" in body
    assert [p.id for p in programs(runtime, shop.merchant_id)] == [shop.program_id]


def test_invalid_json_and_bad_fields_are_reported(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    r = post(
        client,
        "/admin/programs/new",
        {**FORM, "slug": "Not A Slug", "background": "red", "rules": "{not json"},
    )
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'data-field="slug"' in body
    assert 'data-field="background"' in body
    assert "Not valid JSON" in body
    assert len(programs(runtime, shop.merchant_id)) == 1


def test_good_program_is_saved_with_normalised_rules(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["owner"])
    rules = {"amount_per_point": 0.5, "levels": [{"name": "Member", "min_spend": 0}]}
    r = post(client, "/admin/programs/new", {**FORM, "rules": json.dumps(rules)})
    assert r.status_code == 302
    created = programs(runtime, shop.merchant_id)[-1]
    assert created.slug == "coffee-club"
    assert created.kind == "tiers"
    assert created.rules["amount_per_point"] == "0.5"
    assert created.design == {
        "background": "#3b2418",
        "foreground": "#ffffff",
        "label": "#e9c8a0",
        "logo_text": "Bean There",
    }
    # The slug is global (it is the join URL): a second program cannot take it.
    r = post(client, "/admin/programs/new", {**FORM, "rules": json.dumps(rules)})
    assert r.status_code == 422
    assert "This slug is taken" in r.get_data(as_text=True)


def test_design_change_refreshes_member_passes_and_queues_a_push(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        members = [factories.member(s, program) for _ in range(3)]
        passes = [factories.member_pass(s, settings, m) for m in members]
        device = Device(
            merchant_id=shop.merchant_id,
            library_id="lib1",
            pass_type_id=settings.pass_type_id,
            push_token="tok-1",
        )
        s.add(device)
        s.flush()
        s.add(Registration(merchant_id=shop.merchant_id, device_id=device.id, pass_id=passes[0].id))
        before = {p.id: (p.version, p.change_stamp) for p in passes}
        slug, rules = program.slug, program.rules
    sign_in(client, shop.emails["marketer"])
    page = client.get(f"/admin/programs/{shop.program_id}")
    assert page.status_code == 200
    r = post(
        client,
        f"/admin/programs/{shop.program_id}",
        {
            **FORM,
            "kind": "points",
            "slug": slug,
            "rules": json.dumps(rules),
            "background": "#112233",
        },
    )
    assert r.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Program, shop.program_id).design["background"] == "#112233"
        for pid, (version, stamp) in before.items():
            row = s.get(Pass, pid)
            assert row.version == version + 1
            assert row.change_stamp > stamp
        pushes = list(s.scalars(select(Job).where(Job.kind == "apple.push")))
        assert [j.payload["token"] for j in pushes] == ["tok-1"]
    assert "3 passes will update" in client.get(f"/admin/programs/{shop.program_id}").get_data(
        as_text=True
    )


def test_saving_an_unchanged_program_does_not_touch_passes(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        program.design = {k: FORM[k] for k in ("background", "foreground", "label", "logo_text")}
        program.name = FORM["name"]
        pass_id = factories.member_pass(s, settings, factories.member(s, program)).id
        slug, rules = program.slug, program.rules
    sign_in(client, shop.emails["marketer"])
    post(
        client,
        f"/admin/programs/{shop.program_id}",
        {**FORM, "kind": "points", "slug": slug, "rules": json.dumps(rules)},
    )
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Pass, pass_id).version == 1


def test_images_are_resized_to_apples_sizes(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    sign_in(client, shop.emails["marketer"])
    r = post(
        client,
        f"/admin/programs/{shop.program_id}/images",
        {
            "logo": (io.BytesIO(png(1000, 500)), "logo.png"),
            "strip": (io.BytesIO(png(1200, 300, "JPEG")), "strip.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        images = s.get(Program, shop.program_id).design["images"]
    expected = {
        # 1000x500 fitted into 160x50 pt: height-bound, 2:1 kept.
        "logo.png": (100, 50),
        "logo@2x.png": (200, 100),
        "logo@3x.png": (300, 150),
        # The strip is cropped to fill 375x144 pt exactly.
        "strip.png": (375, 144),
        "strip@2x.png": (750, 288),
        "strip@3x.png": (1125, 432),
    }
    assert set(images) == set(expected)
    for name, size in expected.items():
        path = settings.home / images[name]
        assert path == settings.home / "designs" / str(shop.program_id) / name
        with Image.open(path) as img:
            assert img.size == size
            assert img.format == "PNG"
    served = client.get(f"/admin/programs/{shop.program_id}/images/logo@2x.png")
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    served.close()
    # The edit page and the preview now use the uploaded images.
    page = client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True)
    assert f"/admin/programs/{shop.program_id}/images/strip@2x.png" in page


def test_wide_logo_is_bound_by_width(tmp_path):  # type: ignore[no-untyped-def]
    files = designs.resize("logo", png(800, 100))
    sizes = {name: Image.open(io.BytesIO(data)).size for name, data in files.items()}
    assert sizes == {"logo.png": (160, 20), "logo@2x.png": (320, 40), "logo@3x.png": (480, 60)}


def test_non_images_and_big_files_are_rejected(client, runtime, settings, monkeypatch):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points")
    sign_in(client, shop.emails["marketer"])
    r = post(
        client,
        f"/admin/programs/{shop.program_id}/images",
        {"logo": (io.BytesIO(b"%PDF-1.4 not an image"), "logo.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 422
    assert "This file is not an image" in r.get_data(as_text=True)
    # The view's limit, shrunk: the test client spools bodies over 500 kB to a temporary
    # file it never closes. The real 5 MB limit is checked on designs.resize below.
    monkeypatch.setattr(designs, "MAX_BYTES", 200_000)
    big = png(10, 10) + b"\0" * 200_001
    r = post(
        client,
        f"/admin/programs/{shop.program_id}/images",
        {"strip": (io.BytesIO(big), "strip.png")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 422
    assert "the limit is 0.190735 MB" in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        assert "images" not in (s.get(Program, shop.program_id).design or {})
    assert not (settings.home / "designs" / str(shop.program_id)).exists()


def test_preview_fragment_follows_the_form(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "stamps")
    sign_in(client, shop.emails["marketer"])
    r = client.get(
        "/admin/programs/preview",
        query_string={
            "name": "Espresso Card",
            "kind": "stamps",
            "template": "stamp_card",
            "background": "#102030",
            "foreground": "#ffffff",
            "label": "#ffcc00",
            "logo_text": "Bean There",
        },
    )
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    assert 'id="preview-apple"' in body
    assert 'id="preview-google"' in body
    assert "background:rgb(16, 32, 48)" in body  # Apple's backgroundColor from pass.json
    assert "background:#102030" in body  # Google's hexBackgroundColor
    assert "Bean There" in body
    assert "Espresso Card" in body
    assert "4/10" in body  # the sample member's stamps
    assert "data:image/png;base64," in body  # the stamp strip drawn for 4 of 10
    assert "<svg" in body  # the QR code


def test_other_merchants_programs_are_404(client, runtime):  # type: ignore[no-untyped-def]
    mine = make_shop(runtime)
    theirs = make_shop(runtime)
    sign_in(client, mine.emails["owner"])
    assert client.get(f"/admin/programs/{theirs.program_id}").status_code == 404
    assert (
        client.get(
            "/admin/programs/preview", query_string={"program_id": theirs.program_id}
        ).status_code
        == 404
    )


def test_resize_refuses_over_5_mb_and_non_images():
    with pytest.raises(designs.DesignImageError, match="the limit is 5 MB"):
        designs.resize("strip", png(10, 10) + b"\0" * (5 * 1024 * 1024))
    with pytest.raises(designs.DesignImageError, match="not an image"):
        designs.resize("logo", b"GIF89a but not really")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="BMP")
    with pytest.raises(designs.DesignImageError, match="BMP images are not accepted"):
        designs.resize("logo", buf.getvalue())


def test_big_images_are_decoded_no_larger_than_a_pass_can_use():
    # A 6300x6300 PNG compresses to a few kB and decoded whole to 237 MB in 4 s in a web
    # worker: PNG, GIF and WebP over 8 megapixels are refused before decoding.
    flat = png(6300, 6300)
    assert len(flat) < 200_000
    with pytest.raises(designs.DesignImageError, match=r"39\.7 megapixels; the limit for PNG is 8"):
        designs.resize("strip", flat)
    # A phone photo (JPEG, 8000x6000) is decoded at a reduced scale, at least twice the
    # strip's 3x size, and still gives Wallet's sizes.
    photo = png(8000, 6000, "JPEG")
    decoded = designs._open(photo, (1125, 432))
    assert decoded.size == (4000, 3000)  # 1/2, the smallest scale that covers 2250x864
    files = designs.resize("strip", photo)
    assert Image.open(io.BytesIO(files["strip@3x.png"])).size == (1125, 432)
    # Any format goes on to the resizes at no more than twice that size, by a whole factor.
    assert designs._open(png(4500, 1750), (1125, 432)).size == (2250, 875)


def test_a_template_switch_moves_the_cards_and_leaves_the_coupons(client, runtime, settings):  # type: ignore[no-untyped-def]
    from walletpass.offers.models import Offer
    from walletpass.offers.services import issue_coupon

    shop = make_shop(runtime, "points")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        member = factories.member(s, program)
        card = factories.member_pass(s, settings, member)
        offer = Offer(
            merchant_id=shop.merchant_id,
            slug=f"o{shop.program_id}",
            title="Coffee",
            program_id=program.id,
            discount={"type": "amount", "value": "2.00"},
        )
        s.add(offer)
        s.flush()
        _c, held = issue_coupon(s, settings, offer, member_id=member.id)
        _c, flyer = issue_coupon(s, settings, offer)
        before = {p.id: (p.template, p.version) for p in (card, held, flyer)}
        slug, rules = program.slug, program.rules
    sign_in(client, shop.emails["marketer"])
    form = {**FORM, "kind": "points", "slug": slug, "rules": json.dumps(rules)}
    r = post(client, f"/admin/programs/{shop.program_id}", {**form, "template": "membership"})
    assert r.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Pass, card.id).template == "membership"
        for pass_id in (held.id, flyer.id):  # a coupon is not a loyalty card
            assert s.get(Pass, pass_id).template == "coupon"
        for pass_id, (_template, version) in before.items():
            assert s.get(Pass, pass_id).version == version + 1


def test_a_program_with_members_keeps_its_kind_and_join_link(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "stamps")
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        slug, rules = program.slug, program.rules
    sign_in(client, shop.emails["marketer"])
    form = {**FORM, "kind": "stamps", "template": "stamp_card", "rules": json.dumps(rules)}
    # No member yet: a typo in the slug can still be fixed.
    r = post(client, f"/admin/programs/{shop.program_id}", {**form, "slug": "beans-typo"})
    assert r.status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        factories.member(s, s.get(Program, shop.program_id))
    r = post(client, f"/admin/programs/{shop.program_id}", {**form, "slug": slug})
    assert r.status_code == 422
    assert "A program with members keeps its join link." in r.get_data(as_text=True)
    points = {**form, "slug": "beans-typo", "kind": "points", "rules": json.dumps({})}
    r = post(client, f"/admin/programs/{shop.program_id}", points)
    assert r.status_code == 422
    assert "A program with members keeps its kind." in r.get_data(as_text=True)
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        assert (program.slug, program.kind) == ("beans-typo", "stamps")
