"""QR codes (SVG, PNG), printable flyers, and flyer coupons claimed by scanning."""

# ruff: noqa: S314 - parses SVG this app just generated, not untrusted input
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import factories
import pytest
import segno
from PIL import Image
from sqlalchemy import func, select

from walletpass.db import utcnow
from walletpass.offers.models import Coupon, Offer
from walletpass.passes.models import Pass
from walletpass.public import qr

PUBLIC = "https://wallet.example.test"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def shop(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        merchant = factories.merchant(s, name="Bean There")
        program = factories.program(
            s,
            merchant,
            "points",
            slug="beans",
            name="Bean Points",
            design={"background": "#224466"},
        )
        offer = Offer(
            merchant_id=merchant.id,
            program_id=program.id,
            slug="spring",
            title="Free croissant",
            description="With any coffee.",
            terms="One per customer.",
            valid_until=utcnow() + timedelta(days=30),
        )
        s.add(offer)
        s.flush()
        return {"merchant_id": merchant.id, "offer_id": offer.id}


def _png_matrix(data: bytes) -> list[list[bool]]:
    """Read the modules back from the PNG: one sample in the middle of each module."""
    image = Image.open(io.BytesIO(data)).convert("L")
    size = image.width // qr.PNG_SCALE - 2 * qr.BORDER
    return [
        [
            image.getpixel(
                (
                    (qr.BORDER + c) * qr.PNG_SCALE + qr.PNG_SCALE // 2,
                    (qr.BORDER + r) * qr.PNG_SCALE + qr.PNG_SCALE // 2,
                )
            )
            < 128
            for c in range(size)
        ]
        for r in range(size)
    ]


def _expected(data: str) -> list[list[bool]]:
    return [[bool(v) for v in row] for row in qr.make(data).matrix]


def test_svg_is_valid_xml_and_carries_the_join_link(client, shop):
    r = client.get("/join/beans/qr.svg")
    assert r.status_code == 200
    assert r.mimetype == "image/svg+xml"
    root = ET.fromstring(r.data)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == f"{PUBLIC}/join/beans?src=qr"
    assert r.headers["X-QR-Data"] == f"{PUBLIC}/join/beans?src=qr"
    # The drawn path is exactly the one segno draws for that link.
    expected = ET.fromstring(qr.svg_bytes(f"{PUBLIC}/join/beans?src=qr"))
    assert root.find(f"{SVG}path").get("d") == expected.find(f"{SVG}path").get("d")


def test_png_decodes_and_its_modules_encode_the_join_link(client, shop):
    r = client.get("/join/beans/qr.png")
    assert r.status_code == 200
    assert r.mimetype == "image/png"
    image = Image.open(io.BytesIO(r.data))
    image.verify()
    assert _png_matrix(r.data) == _expected(f"{PUBLIC}/join/beans?src=qr")


def test_src_override_tells_flyers_apart(client, shop):
    r = client.get("/join/beans/qr.png?src=flyer-b")
    assert r.headers["X-QR-Data"] == f"{PUBLIC}/join/beans?src=flyer-b"
    assert _png_matrix(r.data) == _expected(f"{PUBLIC}/join/beans?src=flyer-b")
    assert _png_matrix(r.data) != _expected(f"{PUBLIC}/join/beans?src=qr")
    refused = client.get("/join/beans/qr.svg?src=<script>", headers={"Accept-Language": "el"})
    assert refused.status_code == 400
    assert "Αυτός ο σύνδεσμος δεν είναι σωστός" in refused.get_data(as_text=True)  # noqa: RUF001


def test_unknown_program_has_no_qr(client, shop):
    assert client.get("/join/nope/qr.png").status_code == 404


def test_program_flyer_prints_cleanly(client, shop):
    r = client.get("/join/beans/flyer?src=window")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Join Bean Points" in html
    assert f'data-qr-data="{PUBLIC}/join/beans?src=window"' in html
    assert "<svg" in html
    assert f"<title>{PUBLIC}/join/beans?src=window</title>" in html
    # No site chrome on a flyer; print rules live in flyer.css.
    assert "wp-main" not in html
    # The one navigation is the language switcher, in the tools that are not printed.
    assert html.count("<nav") == 1
    tools = html[html.index('<div class="flyer-tools noprint">') : html.index("<article")]
    assert '<nav class="wp-languages flyer-languages"' in tools
    with client.get("/static/public/flyer.css") as static:
        css = static.get_data(as_text=True)
    assert "@page" in css
    assert "@media print" in css
    assert ".noprint { display: none" in css


def test_offer_flyer_points_at_the_claim_link(client, shop):
    r = client.get("/offers/spring/flyer")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Free croissant" in html
    assert "One per customer." in html
    assert "Valid until" in html
    assert f'data-qr-data="{PUBLIC}/offers/spring/claim?src=flyer"' in html
    assert client.get("/offers/nope/flyer").status_code == 404


def _coupons(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(Coupon))


def test_claim_issues_an_anonymous_coupon_and_opens_its_page(client, runtime, shop):
    # The flyer's link asks who the customer is (one per customer: test_public_claim.py).
    form = client.get("/offers/spring/claim?src=flyer")
    assert form.status_code == 200
    assert _coupons(runtime) == 0
    [token] = re.findall(r'name="csrf_token" value="([^"]+)"', form.get_data(as_text=True))
    r = client.post("/offers/spring/claim", data={"email": "bo@example.test", "csrf_token": token})
    assert r.status_code == 303
    serial = r.headers["Location"].removeprefix("/p/")
    with runtime.transaction() as s:
        pass_row = s.scalars(select(Pass).where(Pass.serial == serial)).one()
        coupon = s.get(Coupon, pass_row.coupon_id)
        assert coupon.member_id is None
        assert coupon.offer_id == shop["offer_id"]
    page = client.get(f"/p/{serial}").get_data(as_text=True)
    assert "Free croissant" in page
    assert "Add to" in page
    # Scanning the same flyer again on the same phone offers the same coupon.
    again = client.get("/offers/spring/claim").get_data(as_text=True)
    assert f'href="/p/{serial}"' in again
    assert _coupons(runtime) == 1
    # A link preview (HEAD) never mints one.
    client.application.test_client().head("/offers/spring/claim")
    assert _coupons(runtime) == 1


def test_ended_offer_is_not_claimable(client, runtime, shop):
    with runtime.transaction() as s:
        s.get(Offer, shop["offer_id"]).valid_until = utcnow() - timedelta(minutes=1)
    r = client.get("/offers/spring/claim")
    assert r.status_code == 410
    assert "ended" in r.get_data(as_text=True)
    assert _coupons(runtime) == 0


def test_segno_inline_svg_matches_the_link(shop):
    # Guards the helper the pages use: inline SVGs carry the link in <title> too.
    link = qr.public_link(PUBLIC, "/join/beans", src="qr")
    root = ET.fromstring(qr.inline_svg(link))
    assert root.find(f"{SVG}title").text == link
    assert segno.make(link, error="m").matrix == qr.make(link).matrix
