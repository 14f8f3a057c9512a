"""The admin's Health page (owners only, warnings first, in the page's language) and the
dashboard's banner when a certificate is within 30 days of its end."""

from __future__ import annotations

import re
from datetime import timedelta

import factories
import pytest
from healthkit import chain_settings, fresh_caches, with_settings

from walletpass.app import create_app
from walletpass.db import utcnow
from walletpass.tenancy.users import create_user

__all__ = ["chain_settings", "fresh_caches"]  # fixtures, used below
pytestmark = pytest.mark.usefixtures("fresh_caches")

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(runtime):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s)
        for role in ("owner", "marketer"):
            create_user(
                s, merchant_id=m.id, email=f"{role}@shop.test", password=PASSWORD, role=role
            )
    return m


def _client(runtime, settings, email: str):  # type: ignore[no-untyped-def]
    app = create_app(runtime=with_settings(runtime, settings), start_worker=False)
    app.config["TESTING"] = True
    client = app.test_client()
    client.get("/admin/login")
    with client.session_transaction() as session:
        session["csrf"] = "test-csrf-token-0123456789"
    r = client.post(
        "/admin/login",
        data={"email": email, "password": PASSWORD, "csrf_token": "test-csrf-token-0123456789"},
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def _statuses(page: str) -> list[str]:
    return re.findall(r'<tr class="health-(\w+)">', page)


def test_the_owner_sees_warnings_first_with_the_date(runtime, shop, chain_settings):
    settings = chain_settings(days_left=10)
    client = _client(runtime, settings, "owner@shop.test")

    page = client.get("/admin/health").get_data(as_text=True)

    statuses = _statuses(page)
    assert statuses[0] == "warning"
    assert statuses == sorted(statuses, key=["error", "warning", "ok"].index)
    assert "in 10 days" in page
    assert (utcnow() + timedelta(days=10)).strftime("%Y-%m-%d") in page
    assert 'href="/admin/health"' in page  # in the owner's navigation
    # No SMTP server configured: the page says the emails are off.
    assert 'id="health-mail-off"' in page


def test_errors_come_before_warnings(runtime, shop, chain_settings):
    settings = chain_settings(days_left=10, cert_pass_type_id="pass.example.other")
    page = _client(runtime, settings, "owner@shop.test").get("/admin/health").get_data(as_text=True)

    statuses = _statuses(page)
    assert statuses[0] == "error"
    assert "warning" in statuses
    assert "pass.example.other" in page


def test_the_page_is_in_the_readers_language(runtime, shop, chain_settings):
    settings = chain_settings(days_left=10)
    page = (
        _client(runtime, settings, "owner@shop.test")
        .get("/admin/health?lang=el")
        .get_data(as_text=True)
    )

    assert "Υγεία" in page
    assert "σε 10 ημέρες" in page  # the expiry warning, translated, its variables filled


def test_a_marketer_may_not_see_it(runtime, shop, chain_settings):
    client = _client(runtime, chain_settings(), "marketer@shop.test")

    assert client.get("/admin/health").status_code == 403
    assert 'href="/admin/health"' not in client.get("/admin/").get_data(as_text=True)


def test_the_dashboard_warns_of_a_certificate_expiring_soon(runtime, shop, chain_settings):
    settings = chain_settings(days_left=10)
    page = _client(runtime, settings, "owner@shop.test").get("/admin/").get_data(as_text=True)

    [banner] = re.findall(r'<p[^>]*id="certificate-banner".*?</p>', page, re.S)
    assert "pass.test.walletpass" in banner
    assert "in 10 days" in banner
    assert "/admin/health" in banner


def test_no_banner_for_a_certificate_far_from_its_end(runtime, shop, chain_settings):
    settings = chain_settings(days_left=200)
    page = _client(runtime, settings, "owner@shop.test").get("/admin/").get_data(as_text=True)

    assert "certificate-banner" not in page
