"""No English left on the staff's pages: the till and the admin's pages, under en-XA.

A shop with data on every page (a member with a pass, purchases, an adjustment and a
refused scan; an offer; a scheduled campaign; a store; an API key; a CSV import) is
rendered in the pseudo-language, where every text that went through a catalogue comes
out marked; any plain English word left is a text that was never translated. Allowed:
what the test itself put there (names, codes, serials), and the words CLDR gives the
pseudo-language's English dates (month names, AM/PM), which a real language has in its
own. On the admin's pages only the content is checked: the navigation around it
(admin/base.html) belongs to the programs area and is checked there.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import factories
import pytest
from pseudo_support import english_left
from sqlalchemy import select

from walletpass.admin.imports import COLUMNS
from walletpass.app import create_app
from walletpass.loyalty.models import LedgerEntry, Reward
from walletpass.offers.models import Offer
from walletpass.passes.models import Pass
from walletpass.scan.models import Scan
from walletpass.tenancy.models import ApiKey, Store, User
from walletpass.tenancy.users import hash_password

PASSWORD = "correct horse battery"
CSRF = "csrf-token-for-tests-0123456789"
# What CLDR writes for the pseudo-language's dates and times (it formats as English).
CLDR_ENGLISH = [
    *["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    *["AM", "PM"],
    # The switcher names each language in itself.
    "English",
]
SHOP_DATA = [
    "Bean There",
    "Bean Points",
    "Free muffin",
    "Ada Lovelace",
    "ada@example.test",
    "owner@bean.example",
    "staff@bean.example",
    "Europe/Paris",
    "Spring sale",
    "spring-sale",
    "Half off spring pastries",
    "Pastry push",
    "Two for one this week",
    "Gold",
    "Main Street",
    "Harbour",
    "main",
    "harbour",
    "CRM sync",
    "goodwill",
    "grace@example.test",
    "Grace Hopper",
    "members.csv",
]


@pytest.fixture
def pseudo(runtime: Any) -> Any:
    app = create_app(
        runtime.settings.override(pseudo_locale=True), runtime=runtime, start_worker=False
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture
def shop(runtime: Any, settings: Any) -> dict[str, Any]:
    hashed = hash_password(PASSWORD)
    with runtime.transaction() as s:
        merchant = factories.merchant(
            s, name="Bean There", timezone="Europe/Paris", currency="EUR", language="el"
        )
        program = factories.program(
            s,
            merchant,
            "points",
            name="Bean Points",
            rules={"amount_per_point": "1", "points_to_currency": "0.10"},
        )
        s.add(
            Reward(
                merchant_id=merchant.id, program_id=program.id, name="Free muffin", cost_points=500
            )
        )
        member = factories.member(
            s,
            program,
            name="Ada Lovelace",
            email="ada@example.test",
            tier="Gold",
            marketing_consent=True,
        )
        code = factories.member_pass(s, settings, member).barcode
        s.add(
            Store(
                merchant_id=merchant.id,
                code="main",
                name="Main Street",
                latitude=48.85,
                longitude=2.35,
            )
        )
        s.add(Store(merchant_id=merchant.id, code="harbour", name="Harbour"))
        s.add(
            User(
                merchant_id=merchant.id,
                email="owner@bean.example",
                password_hash=hashed,
                role="owner",
            )
        )
        s.add(
            User(
                merchant_id=merchant.id,
                email="staff@bean.example",
                password_hash=hashed,
                role="staff",
            )
        )
        return {
            "merchant_id": merchant.id,
            "program_id": program.id,
            "member_id": member.id,
            "code": code,
        }


@pytest.fixture
def owner(pseudo: Any, shop: dict[str, Any]) -> Any:
    """The owner's browser, signed in, reading the pseudo-language (kept in the cookie)."""
    client = pseudo.test_client()
    with client.session_transaction() as session:
        session["csrf"] = CSRF
    client.get("/admin/login?lang=en-XA")
    r = client.post(
        "/admin/login",
        data={"email": "owner@bean.example", "password": PASSWORD, "csrf_token": CSRF},
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    _keep_token(client)
    return client


def _keep_token(client: Any) -> None:
    # Signing in starts a new session with a new CSRF token: the tests' one again.
    with client.session_transaction() as session:
        session["csrf"] = CSRF


def _post(client: Any, url: str, **data: Any) -> Any:
    return client.post(url, data={**data, "csrf_token": CSRF})


def _main(html: str) -> str:
    """The admin page's content, without the navigation around it (another area's)."""
    found = re.search(r'<main class="wpa-main">(.*)</main>', html, re.S)
    assert found, html[:500]
    return found.group(1)


def _allowed(runtime: Any) -> list[str]:
    """The test's data and what the service made of it (serials, codes, key prefixes)."""
    with runtime.transaction() as s:
        made = [p.serial for p in s.scalars(select(Pass))]
        made += [p.barcode for p in s.scalars(select(Pass))]
        made += [p.template for p in s.scalars(select(Pass))]
        made += [f"wp_{k.prefix}_" for k in s.scalars(select(ApiKey))]
        made += [e.receipt_id or "" for e in s.scalars(select(LedgerEntry))]
        made += [e.receipt_id or "" for e in s.scalars(select(Scan))]
        made += [e.reason or "" for e in s.scalars(select(LedgerEntry))]
    return [*SHOP_DATA, *made, *COLUMNS, "YYYY", "MM", "DD", *CLDR_ENGLISH]


def _no_english(html: str, runtime: Any, where: str) -> None:
    # The new API key shown once: random letters, not words.
    shown = re.findall(r'id="new-key">([^<]*)<', html)
    left = english_left(html, [*_allowed(runtime), *shown], html=True)
    assert left == [], f"{where}: English left: {left}"


def _till_scan(client: Any, **body: Any) -> Any:
    return client.post("/till/api/scan", json=body, headers={"X-CSRF-Token": CSRF})


def test_the_till_and_its_script_speak_only_through_the_catalogues(
    pseudo: Any, shop: dict[str, Any], runtime: Any
) -> None:
    client = pseudo.test_client()
    with client.session_transaction() as session:
        session["csrf"] = CSRF
    login = client.get("/till/login?lang=en-XA")
    _no_english(login.get_data(as_text=True), runtime, "/till/login")
    r = client.post(
        "/till/login",
        data={"email": "staff@bean.example", "password": PASSWORD, "csrf_token": CSRF},
    )
    assert r.status_code == 303
    _keep_token(client)
    page = client.get("/till/").get_data(as_text=True)
    assert '<html lang="en-XA">' in page
    _no_english(page, runtime, "/till/")

    # Every message the script can show, as the page hands them to it.
    texts = json.loads(re.search(r'id="till-texts">(.*?)</script>', page, re.S).group(1))
    assert len(texts) > 40
    for key, value in texts.items():
        for form in value.values() if isinstance(value, dict) else [value]:
            assert english_left(form) == [], f"till.js text {key!r}: {form!r}"

    # The endpoints' errors carry the staff's words; the English detail stays for logs.
    unknown = _till_scan(client, code="NOPE-0000", action="lookup")
    assert unknown.status_code == 404
    assert unknown.json["detail"] != unknown.json["message"]  # the English detail, kept
    assert english_left(unknown.json["message"]) == [], unknown.json["message"]
    assert unknown.json["message"].startswith("\u27e6")
    poor = _till_scan(client, code=shop["code"], action="redeem_reward", reward_id=_reward(runtime))
    assert poor.json["error"] == "insufficient-points"
    assert english_left(poor.json["message"]) == [], poor.json["message"]


def _reward(runtime: Any) -> int:
    with runtime.transaction() as s:
        return int(s.scalars(select(Reward.id)).one())


def test_every_admin_page_speaks_only_through_the_catalogues(
    owner: Any, shop: dict[str, Any], runtime: Any
) -> None:
    # History for the member: a purchase and a refused scan at the till, an adjustment.
    till = owner  # an owner may use the till too
    assert (
        _till_scan(
            till, code=shop["code"], action="purchase", amount="12.50", receipt_id="r-1"
        ).status_code
        == 200
    )
    assert (
        _till_scan(
            till, code=shop["code"], action="redeem_reward", reward_id=_reward(runtime)
        ).status_code
        == 409
    )
    member = f"/admin/members/{shop['member_id']}"
    adjusted = _post(
        owner,
        f"{member}/adjust",
        points="5",
        reason="goodwill",
        key="8a4f6f0e-7a1e-4c0e-9a53-1b2c3d4e5f60",
    )
    assert adjusted.status_code == 302
    too_much = _post(
        owner,
        f"{member}/adjust",
        points="-999",
        reason="goodwill",
        key="8a4f6f0e-7a1e-4c0e-9a53-1b2c3d4e5f61",
    )
    assert too_much.status_code == 302
    pages: dict[str, str] = {}
    # The flash messages of both adjustments show on the member's page.
    pages[member] = owner.get(member).get_data(as_text=True)
    assert "wp-flash-ok" in pages[member]
    assert "wp-flash-error" in pages[member]

    # An offer, its form with errors, and its page.
    form = {
        "title": "Spring sale",
        "slug": "spring-sale",
        "description": "Half off spring pastries",
        "discount_type": "percent",
        "discount_value": "50",
        "uses_per_coupon": "1",
        "valid_until": "2099-06-30T21:30",
        "program_id": str(shop["program_id"]),
        "active": "on",
    }
    bad = _post(
        owner,
        "/admin/offers/new",
        **{**form, "title": "", "discount_value": "150", "total_cap": "0"},
    )
    assert bad.status_code == 422
    pages["/admin/offers/new (errors)"] = bad.get_data(as_text=True)
    assert _post(owner, "/admin/offers/new", **form).status_code == 302
    with runtime.transaction() as s:
        offer_id = s.scalars(select(Offer.id)).one()
    issued = _post(owner, f"/admin/offers/{offer_id}/issue", program_id=str(shop["program_id"]))
    assert issued.status_code == 302
    pages[f"/admin/offers/{offer_id}"] = owner.get(f"/admin/offers/{offer_id}").get_data(
        as_text=True
    )

    # A scheduled campaign to a tier, with a variant.
    campaign = _post(
        owner,
        "/admin/campaigns/new",
        name="Pastry push",
        message="Two for one this week",
        variant_b="Two for one this week",
        audience_kind="tier",
        tier="Gold",
        holdout_percent="10",
        when="later",
        scheduled_at="2099-01-01T09:00",
        offer_id=str(offer_id),
    )
    assert campaign.status_code == 302, campaign.get_data(as_text=True)[:2000]
    campaign_page = campaign.headers["Location"]
    pages[campaign_page] = owner.get(campaign_page).get_data(as_text=True)
    bad_campaign = _post(
        owner, "/admin/campaigns/new", name="", audience_kind="tier", holdout_percent="80"
    )
    pages["/admin/campaigns/new (errors)"] = bad_campaign.get_data(as_text=True)

    # A store saved and one refused; an API key created (the page showing it once).
    assert _post(owner, "/admin/stores", code="kiosk", name="").status_code == 422
    pages["/admin/stores (errors)"] = _post(
        owner, "/admin/stores", code="bad code!", name="", latitude="91"
    ).get_data(as_text=True)
    created = _post(owner, "/admin/api-keys", name="CRM sync", scope="crm")
    assert created.status_code == 201
    pages["/admin/api-keys (new key)"] = created.get_data(as_text=True)

    # A CSV import of one member: its progress page, queued.
    csv = b"name,email\nGrace Hopper,grace@example.test\n"
    refused = owner.post(
        "/admin/members/import",
        data={
            "program_id": str(shop["program_id"]),
            "file": (io.BytesIO(b"name\n\xff\xfe\n"), "members.csv"),
            "csrf_token": CSRF,
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    pages["/admin/members/import (refused)"] = refused.get_data(as_text=True)

    started = owner.post(
        "/admin/members/import",
        data={
            "program_id": str(shop["program_id"]),
            "file": (io.BytesIO(csv), "members.csv"),
            "csrf_token": CSRF,
        },
        content_type="multipart/form-data",
    )
    assert started.status_code == 302, started.get_data(as_text=True)[:1000]
    pages[started.headers["Location"]] = owner.get(started.headers["Location"]).get_data(
        as_text=True
    )

    with runtime.transaction() as s:
        store_id = s.scalars(select(Store.id).where(Store.code == "main")).one()
    for path in (
        "/admin/",
        "/admin/?days=7",
        "/admin/members",
        "/admin/members?q=Ada",
        "/admin/offers",
        "/admin/offers/new",
        "/admin/stores",
        f"/admin/stores?edit={store_id}",
        "/admin/api-keys",
        "/admin/wallet-logs",
        "/admin/wallet-problems",
        "/admin/members/import",
        "/admin/campaigns/",
        "/admin/campaigns/new",
    ):
        response = owner.get(path)
        assert response.status_code == 200, path
        pages[path] = response.get_data(as_text=True)

    for path, html in pages.items():
        assert '<html lang="en-XA">' in html, path
        assert "\u27e6" in _main(html), path  # the page's texts went through the catalogues
        _no_english(_main(html), runtime, path)
        _no_english(
            re.search(r"<title>(.*?)</title>", html, re.S).group(0), runtime, f"{path} title"
        )

    # Signed out: the sign-in page, with its flash.
    signed_out = _post(owner, "/admin/logout")
    assert signed_out.status_code == 302
    login = owner.get("/admin/login").get_data(as_text=True)
    _no_english(login, runtime, "/admin/login")
