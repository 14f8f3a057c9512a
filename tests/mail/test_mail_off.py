"""Without an SMTP server (WALLETPASS_SMTP_URL unset): joining works and queues nothing,
the admin says card emails are off and why, the till offers no button, the API answers a
clear problem; and a URL that cannot be used is refused at start-up."""

from __future__ import annotations

import re

import factories
import pytest
from sqlalchemy import select

from walletpass.config import SettingError, Settings
from walletpass.jobs.models import Job, JobStatus
from walletpass.mail import services
from walletpass.mail.models import CardEmail
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.users import create_user

PASSWORD = "correct horse battery"


def _nothing_queued(runtime) -> None:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        assert list(s.scalars(select(Job).where(Job.kind == "mail.card"))) == []
        assert list(s.scalars(select(CardEmail))) == []


def test_joining_works_and_queues_no_email(client, runtime, settings):
    assert settings.smtp_server is None
    with runtime.transaction() as s:
        factories.program(s, factories.merchant(s), "stamps", slug="tea")
    r = client.post("/join/tea", data={"name": "Ada", "email": "ada@example.test"})
    assert r.status_code == 303
    _nothing_queued(runtime)


def test_the_api_answers_a_clear_problem(client, runtime, settings):
    with runtime.transaction() as s:
        shop = factories.merchant(s)
        member = factories.member(s, factories.program(s, shop, "points"))
        _, key = create_api_key(s, merchant_id=shop.id, scope="till", name="till")
        member_id = member.id
    r = client.post(
        f"/api/v1/members/{member_id}/card-email", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 409
    assert r.mimetype == "application/problem+json"
    assert r.json["type"] == "/problems/mail-not-configured"
    assert "WALLETPASS_SMTP_URL" in r.json["detail"]
    _nothing_queued(runtime)


def test_the_admin_says_card_emails_are_off_and_the_till_has_no_button(client, runtime, settings):
    with runtime.transaction() as s:
        shop = factories.merchant(s)
        member = factories.member(s, factories.program(s, shop, "points"))
        factories.member_pass(s, settings, member)
        create_user(
            s, merchant_id=shop.id, email="owner@example.test", password=PASSWORD, role="owner"
        )
        member_id = member.id
    with client.session_transaction() as session:
        session["csrf"] = "test-csrf-token-0123456789"
    signed_in = client.post(
        "/admin/login",
        data={
            "email": "owner@example.test",
            "password": PASSWORD,
            "csrf_token": "test-csrf-token-0123456789",
        },
    )
    assert signed_in.status_code in (302, 303)
    page = client.get(f"/admin/members/{member_id}").get_data(as_text=True)
    assert "Card emails are off: WALLETPASS_SMTP_URL is not set" in page
    assert "Email the card link" not in page
    till = client.get("/till/").get_data(as_text=True)
    assert 'data-card-email-url=""' in till
    # The admin's endpoint, posted anyway, says so and queues nothing.
    with client.session_transaction() as session:
        csrf = session["csrf"]
    form = {"key": "6f1c1f2e-8a59-4c1e-9f8e-2d2a1b0c0d0e", "csrf_token": csrf}
    r = client.post(f"/admin/members/{member_id}/card-email", data=form, follow_redirects=True)
    assert re.search(r"card emails are off", r.get_data(as_text=True))
    _nothing_queued(runtime)


def test_a_worker_without_smtp_keeps_the_email_waiting(runtime, settings, worker):
    # Queued by a web process that has WALLETPASS_SMTP_URL, run by a worker that lacks it.
    web = settings.override(smtp_url="smtp://127.0.0.1:2525", mail_from="c@example.test")
    with runtime.transaction() as s:
        member = factories.member(s, factories.program(s, factories.merchant(s), "points"))
        factories.member_pass(s, settings, member)
        services.request_card_email(s, web, member)
    worker.run_until_idle()
    with runtime.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == services.JOB_KIND)).one()
        assert job.status == JobStatus.PENDING
        assert (job.last_error or "").endswith("WALLETPASS_SMTP_URL is not set on this worker")
        assert s.scalars(select(CardEmail.status)).one() == "pending"


# ------------------------------------------------------------------ the settings


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("smtp://mail.example.test", "smtp://mail.example.test:25"),
        ("smtp+starttls://cards@mail.example.test", "smtp+starttls://cards@mail.example.test:587"),
        ("smtps://cards:p%40ss@mail.example.test:2465", "smtps://cards@mail.example.test:2465"),
        ("SMTP://127.0.0.1:2525/", "smtp://127.0.0.1:2525"),
    ],
)
def test_smtp_urls_are_read_with_their_default_ports(url, described):
    server = Settings(smtp_url=url, mail_from="cards@example.test").smtp_server
    assert server is not None
    assert server.describe() == described
    if "p%40ss" in url:
        assert (server.username, server.password) == ("cards", "p@ss")
        assert "p@ss" not in repr(server)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.test",
        "smtp://",
        "smtp://mail.example.test:notaport",
        "smtp://user:hunter2secret@mail.example.test/inbox",
        "mail.example.test:25",
        "smtps://cards:s@:465",  # a one-letter password, also in the scheme
    ],
)
def test_an_smtp_url_that_cannot_be_used_is_refused_at_start(url):
    with pytest.raises(SettingError) as refused:
        Settings.from_env({"WALLETPASS_SMTP_URL": url, "WALLETPASS_MAIL_FROM": "c@example.test"})
    message = str(refused.value)
    assert message.startswith("WALLETPASS_SMTP_URL:")
    assert "smtp+starttls://user:password@host:587" in message
    assert "hunter2secret" not in message  # the password never shown
    if url.startswith("smtps://cards"):
        assert "'smtps://cards:***@:465'" in message


@pytest.mark.parametrize("sender", ["", "cards", "Demo Café <>", "@example.test"])
def test_an_smtp_server_needs_a_sender_address(sender):
    with pytest.raises(SettingError, match="WALLETPASS_MAIL_FROM"):
        Settings(smtp_url="smtp://mail.example.test", mail_from=sender)
