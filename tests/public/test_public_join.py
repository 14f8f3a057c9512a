"""The join page: branded form, validation next to the field, dedupe, attribution, limits."""

from __future__ import annotations

from datetime import date, timedelta

import factories
import pytest
from sqlalchemy import func, select

from walletpass.loyalty.models import Member
from walletpass.passes.models import Pass

GOOD = {"name": "Ada Lovelace", "email": "ada@example.test"}


@pytest.fixture
def program(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Bean There")
        row = factories.program(
            s,
            shop,
            "stamps",
            slug="beans",
            name="Coffee Card",
            design={"background": "#5b3a29", "foreground": "#ffffff", "label": "#f3d9b1"},
        )
        return {"id": row.id, "slug": row.slug, "merchant_id": shop.id}


def _members(runtime) -> list[Member]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(Member).order_by(Member.id)))


def _serial_from(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith("/p/")
    return location.removeprefix("/p/")


def test_get_renders_the_branded_form(client, program):
    r = client.get("/join/beans?src=qr&ref=abc123")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Coffee Card" in html
    assert "Bean There" in html
    assert "--brand-bg: #5b3a29" in html
    assert "/assets/templates/stamp_card/logo@2x.png" in html
    # Consent is opt-in: the checkbox is not pre-ticked.
    assert 'name="marketing_consent" value="on" >' in html or "checked" not in html
    assert 'name="src" value="qr"' in html
    assert 'value="ABC123"' in html  # the referral code, prefilled from ?ref=


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"email": "a@example.test"}, "name", "Please tell us your name."),
        ({"name": "Bo", "email": "not-an-email"}, "email", "does not look like an email"),
        ({"name": "Bo"}, "email", "email address or a phone number"),
        ({"name": "Bo", "phone": "12"}, "phone", "6 to 15 digits"),
        (
            {
                "name": "Bo",
                "email": "b@example.test",
                "birthday": (date.today() + timedelta(days=2)).isoformat(),
            },
            "birthday",
            "cannot be in the future",
        ),
        (
            {"name": "Bo", "email": "b@example.test", "referral_code": "NOSUCH"},
            "referral_code",
            "do not know this referral code",
        ),
    ],
)
def test_bad_input_is_shown_next_to_the_field_and_creates_nothing(
    client, runtime, program, form, field, message
):
    r = client.post("/join/beans", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert f'<p class="wp-error" id="{field}-error">' in html
    error_at = html.index(f'id="{field}-error"')
    assert message in html[error_at : error_at + 200]
    # The field itself points at its error (screen readers), and typed values are kept.
    assert f'aria-describedby="{field}-error"' in html
    if form.get("name"):
        assert f'value="{form["name"]}"' in html
    assert _members(runtime) == []


def test_good_post_creates_member_and_pass_and_redirects_to_it(client, runtime, program):
    r = client.post(
        "/join/beans?src=flyer-a", data={**GOOD, "src": "flyer-a", "birthday": "1990-12-10"}
    )
    serial = _serial_from(r)
    [member] = _members(runtime)
    assert (member.name, member.email, member.birthday) == (
        "Ada Lovelace",
        "ada@example.test",
        date(1990, 12, 10),
    )
    assert member.source == "flyer-a"
    assert member.marketing_consent is False  # not ticked, not given
    with runtime.transaction() as s:
        pass_row = s.scalars(select(Pass).where(Pass.serial == serial)).one()
        assert pass_row.member_id == member.id
    assert client.get(f"/p/{serial}").status_code == 200


def test_consent_is_stored_only_when_ticked(client, runtime, program):
    _serial_from(client.post("/join/beans", data={**GOOD, "marketing_consent": "on"}))
    _serial_from(client.post("/join/beans", data={"name": "Bo", "email": "bo@example.test"}))
    consent = {m.email: m.marketing_consent for m in _members(runtime)}
    assert consent == {"ada@example.test": True, "bo@example.test": False}


def test_double_submit_creates_one_member(client, runtime, program):
    first = _serial_from(client.post("/join/beans", data=GOOD))
    second = _serial_from(client.post("/join/beans", data={**GOOD, "email": "ADA@example.test"}))
    assert first == second
    assert len(_members(runtime)) == 1


def test_double_submit_by_phone_only_creates_one_member(client, runtime, program):
    form = {"name": "Cy", "phone": "+44 20 7946 0000"}
    first = _serial_from(client.post("/join/beans", data=form))
    # The cancelled first response never set the cookie: a fresh browser, same details.
    other = client.application.test_client()
    second = _serial_from(other.post("/join/beans", data={**form, "phone": "+44 2079460000"}))
    assert first == second
    [member] = _members(runtime)
    assert member.phone == "+442079460000"


def test_someone_else_typing_a_members_email_does_not_get_the_card(client, runtime, program):
    serial = _serial_from(client.post("/join/beans", data=GOOD))
    stranger = client.application.test_client()
    r = stranger.post("/join/beans", data={"name": "Mallory", "email": "ada@example.test"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "already a member" in html
    assert serial not in html
    assert len(_members(runtime)) == 1


def test_referral_code_links_the_referrer(client, runtime, program):
    _serial_from(client.post("/join/beans", data=GOOD))
    [referrer] = _members(runtime)
    other = client.application.test_client()
    _serial_from(
        other.post(
            "/join/beans",
            data={
                "name": "Bo",
                "email": "bo@example.test",
                "referral_code": referrer.referral_code.lower(),
            },
        )
    )
    with runtime.transaction() as s:
        bo = s.scalars(select(Member).where(Member.email == "bo@example.test")).one()
        assert bo.referred_by_id == referrer.id


def test_inactive_or_unknown_program_is_404(client, runtime, program):
    assert client.get("/join/nope").status_code == 404
    with runtime.transaction() as s:
        shop = factories.merchant(s)
        factories.program(s, shop, "points", slug="closed", active=False)
    for path in ("/join/closed", "/join/closed/qr.svg", "/join/closed/flyer"):
        r = client.get(path)
        assert r.status_code == 404, path
    r = client.post("/join/closed", data=GOOD)
    assert r.status_code == 404
    assert "Not found" in r.get_data(as_text=True)
    assert _members(runtime) == []


def test_join_posts_are_rate_limited_per_ip(client, runtime, program):
    statuses = [client.post("/join/beans", data={"name": ""}).status_code for _ in range(11)]
    assert statuses[:10] == [422] * 10
    assert statuses[10] == 429
    r = client.post("/join/beans", data=GOOD)
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "try again" in r.get_data(as_text=True)
    # Another address is not affected.
    other = client.post("/join/beans", data=GOOD, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert other.status_code == 303
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 1
