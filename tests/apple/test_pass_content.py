"""What a phone receives for each template: the classic and the iOS 27 poster style
(both signed and verified with openssl), relevantDates, featuredActions, the barcode in
the merchant's format, and a coupon after its end and after its last use."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from zoneinfo import ZoneInfo

import factories
import pytest
from pkpass_check import verify_pkpass

from walletpass.db import utcnow
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass

CLASSIC = {"stamps": "storeCard", "points": "storeCard", "membership": "storeCard"}


def _fetch(client, row: dict) -> bytes:  # type: ignore[no-untyped-def,type-arg]
    r = client.get(
        f"/apple/v1/passes/{row['type']}/{row['serial']}",
        headers={"Authorization": f"ApplePass {row['token']}"},
    )
    assert r.status_code == 200
    return r.data


def _pass_json(data: bytes) -> dict:  # type: ignore[type-arg]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("pass.json"))


def _names(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return set(z.namelist())


def _card(runtime, settings, kind: str, design: dict, **member_kw) -> dict:  # type: ignore[no-untyped-def,type-arg]
    with runtime.transaction() as s:
        m = factories.merchant(s, timezone="Asia/Taipei")
        p = factories.program(s, m, kind, design=design)
        mem = factories.member(s, p, **member_kw)
        row = factories.member_pass(s, settings, mem)
        return {"serial": row.serial, "token": row.auth_token, "type": row.pass_type_id}


def _coupon(runtime, settings, design: dict | None = None, **offer_kw) -> dict:  # type: ignore[no-untyped-def,type-arg]
    with runtime.transaction() as s:
        m = factories.merchant(s, timezone="Europe/Athens")
        row = factories.coupon_pass(s, settings, m, **offer_kw)
        if design is not None:
            # As offers.services issues a program's coupon: the pass follows its design.
            row.program_id = factories.program(s, m, "offers", design=design).id
        return {
            "serial": row.serial,
            "token": row.auth_token,
            "type": row.pass_type_id,
            "id": row.id,
            "coupon_id": row.coupon_id,
        }


@pytest.mark.parametrize("kind", ["stamps", "points", "membership", "offers"])
@pytest.mark.parametrize("poster", [False, True], ids=["classic", "poster"])
def test_each_template_in_each_style_verifies(  # type: ignore[no-untyped-def]
    client, runtime, settings, certs_dir, tmp_path, kind, poster
):
    design = {"poster_style": True} if poster else {}
    if kind == "offers":
        row = _coupon(runtime, settings, design)
    else:
        row = _card(runtime, settings, kind, design)
    data = _fetch(client, row)
    pj = verify_pkpass(data, certs_dir / "ca.pem", tmp_path / "check")
    classic = CLASSIC.get(kind, "coupon")
    names = _names(data)
    if poster:
        assert "posterGeneric" in pj
        assert "generic" in pj
        assert classic not in pj
        assert len(pj["posterGeneric"].get("footerFields", [])) <= 1
        assert len(pj["posterGeneric"].get("headerFields", [])) <= 1
        # The poster face's artwork and logo ship with it, at every scale.
        assert {"background@2x.png", "background@3x.png", "primaryLogo@3x.png"} <= names
    else:
        assert classic in pj
        assert "posterGeneric" not in pj
        assert "generic" not in pj
        assert not any(n.startswith(("background", "primaryLogo")) for n in names)
    actions = pj["featuredActions"]
    assert 1 <= len(actions) <= 2
    assert all(a["url"] == f"{settings.public_url.rstrip('/')}/p/{row['serial']}" for a in actions)
    assert {a["type"] for a in actions} <= {"membershipBenefits", "viewOffersRewards"}


def test_the_poster_style_is_off_by_default(client, runtime, settings):  # type: ignore[no-untyped-def]
    pj = _pass_json(_fetch(client, _card(runtime, settings, "points", {})))
    assert "storeCard" in pj
    assert "posterGeneric" not in pj


def test_a_coupon_is_relevant_in_its_window_in_the_shops_zone(client, runtime, settings):  # type: ignore[no-untyped-def]
    start = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    end = start + timedelta(days=7)
    pj = _pass_json(_fetch(client, _coupon(runtime, settings, valid_from=start, valid_until=end)))
    athens = ZoneInfo("Europe/Athens")
    assert pj["relevantDates"] == [
        {
            "startDate": start.astimezone(athens).isoformat(),
            "endDate": end.astimezone(athens).isoformat(),
        }
    ]
    # Older iOS reads the single date: the window's start, with Athens' offset.
    assert pj["relevantDate"] == start.astimezone(athens).isoformat()
    assert pj["relevantDate"].endswith(("+02:00", "+03:00"))


def test_a_coupon_with_only_an_end_is_relevant_at_its_end(client, runtime, settings):  # type: ignore[no-untyped-def]
    end = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    pj = _pass_json(_fetch(client, _coupon(runtime, settings, valid_until=end)))
    local = end.astimezone(ZoneInfo("Europe/Athens")).isoformat()
    assert pj["relevantDates"] == [{"date": local}]
    assert pj["relevantDate"] == local


def test_a_loyalty_card_without_an_offer_has_no_relevant_dates(client, runtime, settings):  # type: ignore[no-untyped-def]
    pj = _pass_json(_fetch(client, _card(runtime, settings, "points", {})))
    assert "relevantDates" not in pj
    assert "relevantDate" not in pj


def test_a_coupon_a_month_after_its_end_is_expired_on_the_phone(  # type: ignore[no-untyped-def]
    client, runtime, settings, certs_dir, tmp_path
):
    end = (utcnow() - timedelta(days=31)).replace(microsecond=0)
    row = _coupon(runtime, settings, valid_from=end - timedelta(days=14), valid_until=end)
    pj = verify_pkpass(_fetch(client, row), certs_dir / "ca.pem", tmp_path / "c")
    # Either key files the pass under Expired; both are there.
    assert pj["voided"] is True
    assert pj["expirationDate"] == end.isoformat(timespec="seconds")


def test_a_coupon_after_its_last_use_is_voided(client, runtime, settings):  # type: ignore[no-untyped-def]
    row = _coupon(runtime, settings, valid_until=utcnow() + timedelta(days=30))
    assert "voided" not in _pass_json(_fetch(client, row))
    with runtime.transaction() as s:
        coupon = s.get(Coupon, row["coupon_id"])
        offer = s.get(Offer, coupon.offer_id)
        # What offers.services.redeem_coupon leaves when no next offer takes the pass.
        coupon.uses = offer.uses_per_coupon
        coupon.status = "used"
        pass_row = s.get(Pass, row["id"])
        pass_row.version += 1
        pass_row.modified_at = pass_row.modified_at + timedelta(seconds=1)
    assert _pass_json(_fetch(client, row))["voided"] is True


def test_a_card_number_leads_in_the_merchants_format_with_the_qr_code_after_it(  # type: ignore[no-untyped-def]
    client, runtime, settings
):
    design = {"barcode_format": "ean13"}
    row = _card(runtime, settings, "points", design, external_id="4006381333931")
    first, second = _pass_json(_fetch(client, row))["barcodes"]
    assert first["format"] == "PKBarcodeFormatEAN13"
    assert first["message"] == "4006381333931"
    assert second["format"] == "PKBarcodeFormatQR"


def test_a_card_number_that_does_not_fit_keeps_the_card_on_its_qr_code(  # type: ignore[no-untyped-def]
    client, runtime, settings
):
    design = {"barcode_format": "ean13"}
    row = _card(runtime, settings, "points", design, external_id="4006381333932")
    formats = [b["format"] for b in _pass_json(_fetch(client, row))["barcodes"]]
    assert formats == ["PKBarcodeFormatQR"]
