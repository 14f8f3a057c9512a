# ruff: noqa: RUF001 - Greek and Chinese texts, as the members read them
"""The card link by email, through a real SMTP server started by the tests (aiosmtpd):
what the member receives, in their language; the triggers (joining, the API, the till, the
admin); retries of temporary refusals, permanent ones kept dead, and never two emails for
one request, a crash after the server's accept included."""

from __future__ import annotations

import re
from typing import Any

import factories
import pytest
from mail_support import (
    MAIL_FROM,
    Received,
    SmtpCatcher,
    greek_member,
    make_due,
    smtp_server,
)
from sqlalchemy import select, update

from walletpass.db import utcnow
from walletpass.jobs import registry
from walletpass.jobs.models import Job, JobStatus
from walletpass.loyalty.models import Member
from walletpass.mail import services
from walletpass.mail.message import qr_png
from walletpass.mail.models import CardEmail, CardEmailStatus
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.users import create_user

__all__ = ["smtp_server"]  # the fixture, imported for the tests below

PUBLIC = "https://wallet.example.test"
PASSWORD = "correct horse battery"


@pytest.fixture
def settings(settings, smtp_server):  # type: ignore[no-untyped-def]
    return settings.override(smtp_url=smtp_server.url, mail_from=MAIL_FROM)


def _request(runtime, settings, member_id: int, **kw: Any) -> int:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return services.request_card_email(s, settings, s.get(Member, member_id), **kw).id


def _jobs(runtime) -> list[Job]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(Job).where(Job.kind == services.JOB_KIND).order_by(Job.id)))


def _emails(runtime) -> list[CardEmail]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(CardEmail).order_by(CardEmail.id)))


def _qr_cid(received: Received) -> str:
    [image] = received.images
    return str(image["Content-ID"]).strip("<>")


# ------------------------------------------------------------------ what arrives


def test_a_greek_member_gets_the_card_link_and_its_qr_code_in_greek(
    runtime, settings, worker, smtp_server
):
    shop = greek_member(runtime, settings)
    email_id = _request(runtime, settings, shop["member_id"])
    assert worker.run_until_idle() == 1

    [got] = smtp_server.received
    link = f"{PUBLIC}/p/{shop['serial']}"
    assert got.rcpt_tos == ["eleni@example.test"]
    assert got.mail_from == "cards@wallet.example.test"
    message = got.message
    assert message["Subject"] == "Η κάρτα σας Καφέ Ήλιος"
    # The shop's name at the installation's sender address.
    assert message["From"].addresses[0].display_name == "Καφέ Ήλιος"
    assert message["From"].addresses[0].addr_spec == "cards@wallet.example.test"
    assert message["To"].addresses[0].addr_spec == "eleni@example.test"
    assert message["Content-Language"] == "el"
    # The text part: Greek, with the link.
    assert got.text.startswith("Γεια σας Ελένη,")
    assert "Όπως ζητήσατε, ορίστε η κάρτα σας Κάρτα καφέ." in got.text
    assert link in got.text
    # The HTML part: Greek, a button to the link, the QR code inline by its Content-ID.
    assert '<html lang="el">' in got.html
    assert f'href="{link}"' in got.html
    assert "Άνοιγμα της κάρτας μου" in got.html
    cid = _qr_cid(got)
    assert f'src="cid:{cid}"' in got.html
    [image] = got.images
    assert image.get_content_type() == "image/png"
    assert image.get_content() == qr_png(link)  # the QR code of exactly this link
    # The Message-ID fixed at the request, recorded with the accept.
    [row] = _emails(runtime)
    assert row.id == email_id
    assert message["Message-ID"] == row.message_id
    assert re.fullmatch(r"<card\.[0-9a-f]{24}@wallet\.example\.test>", row.message_id)
    assert (row.status, row.recipient, row.language) == ("sent", "eleni@example.test", "el")
    assert row.sent_at is not None
    [job] = _jobs(runtime)
    assert job.status == JobStatus.DONE


def test_joining_on_the_page_emails_the_card_once_in_the_browsers_language(
    client, runtime, settings, worker, smtp_server
):
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="茶屋")
        factories.program(s, shop, "stamps", slug="tea", name="集點卡")
    form = {"name": "王小明", "email": "ming@example.test"}
    headers = {"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"}
    first = client.post("/join/tea", data=form, headers=headers)
    assert first.status_code == 303
    # A double tap: the same card again, and no second email.
    again = client.post("/join/tea", data=form, headers=headers)
    assert again.headers["Location"] == first.headers["Location"]
    assert len(_jobs(runtime)) == 1
    worker.run_until_idle()

    [got] = smtp_server.received
    assert got.rcpt_tos == ["ming@example.test"]
    assert got.message["Subject"] == "您的茶屋會員卡"
    assert "歡迎加入集點卡！您的會員卡已準備好。" in got.text
    assert PUBLIC + first.headers["Location"] in got.text
    [row] = _emails(runtime)
    assert (row.reason, row.source, row.language) == ("welcome", "join", "zh-Hant")


def test_joining_without_an_email_address_queues_nothing(client, runtime, settings, worker):
    with runtime.transaction() as s:
        factories.program(s, factories.merchant(s), "stamps", slug="tea")
    r = client.post("/join/tea", data={"name": "Cy", "phone": "+44 20 7946 0000"})
    assert r.status_code == 303
    assert _jobs(runtime) == []
    assert _emails(runtime) == []


def test_the_api_sends_the_welcome_email_and_the_card_again(
    client, runtime, settings, worker, smtp_server
):
    with runtime.transaction() as s:
        shop = factories.merchant(s, name="Bean There")
        program = factories.program(s, shop, "points", slug="beans")
        _, key = create_api_key(s, merchant_id=shop.id, scope="crm", name="crm")
        program_id = program.id
    auth = {"Authorization": f"Bearer {key}"}
    body = {"program_id": program_id, "name": "Ada", "email": "ada@example.test", "language": "en"}
    created = client.post("/api/v1/members", json=body, headers=auth)
    assert created.status_code == 201
    member_id = created.json["id"]
    # The same customer again (a CRM retry): the member returned, no second welcome.
    assert client.post("/api/v1/members", json=body, headers=auth).json["created"] is False
    worker.run_until_idle()
    [welcome] = smtp_server.received
    assert welcome.message["Subject"] == "Your Bean There card"
    assert "Welcome to " in welcome.text

    # "Send my card again", retried by the client with its Idempotency-Key: one email.
    url = f"/api/v1/members/{member_id}/card-email"
    retry_safe = {**auth, "Idempotency-Key": "resend-1"}
    first = client.post(url, headers=retry_safe)
    assert first.status_code == 202, first.get_data(as_text=True)
    assert first.json["status"] == "pending"
    assert first.json["reason"] == "resend"
    again = client.post(url, headers=retry_safe)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json
    worker.run_until_idle()
    assert len(smtp_server.received) == 2
    assert "Here is your " in smtp_server.received[1].text
    assert smtp_server.received[1].message["Message-ID"] == first.json["message_id"]
    # Its status afterwards, through the same key's replay it is the request's answer;
    # a new key is a new email.
    other = client.post(url, headers={**auth, "Idempotency-Key": "resend-2"})
    assert other.status_code == 202
    assert other.json["id"] != first.json["id"]

    # A member without an address: a clear problem, nothing queued.
    with runtime.transaction() as s:
        s.get(Member, member_id).email = None
    jobs_before = len(_jobs(runtime))
    refused = client.post(url, headers=auth)
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert refused.json["type"] == "/problems/no-email-address"
    assert len(_jobs(runtime)) == jobs_before


def test_the_operation_is_in_the_openapi_document(client, runtime, settings):
    doc = client.get("/api/v1/openapi.json").json
    operation = doc["paths"]["/members/{member_id}/card-email"]["post"]
    assert "202" in operation["responses"]
    assert "/problems/no-email-address" in operation["responses"]["409"]["description"]
    assert "/problems/mail-not-configured" in operation["responses"]["409"]["description"]


# ------------------------------------------------------------------ failures and retries


def test_a_temporary_refusal_is_retried_then_delivered_once(runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    _request(runtime, settings, shop["member_id"])
    smtp_server.data_replies.append("451 4.3.0 Mail server temporarily rejected message")
    worker.run_until_idle()
    assert smtp_server.received == []
    [job] = _jobs(runtime)
    assert job.status == JobStatus.PENDING
    assert "451" in (job.last_error or "")
    assert job.run_at > utcnow()  # the outbox's backoff
    [row] = _emails(runtime)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in (row.last_error or "")

    make_due(runtime)
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    assert _jobs(runtime)[0].status == JobStatus.DONE
    [row] = _emails(runtime)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    # Nothing left to do: running again sends nothing.
    make_due(runtime)
    worker.run_until_idle()
    assert len(smtp_server.received) == 1


def test_a_server_out_of_reach_is_retried_until_it_is_back(runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    _request(runtime, settings, shop["member_id"])
    smtp_server.stop()  # connection refused
    worker.run_until_idle()
    [job] = _jobs(runtime)
    assert job.status == JobStatus.PENDING
    assert "could not reach smtp://127.0.0.1" in (job.last_error or "")
    smtp_server.start()
    make_due(runtime)
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    assert _jobs(runtime)[0].status == JobStatus.DONE


def test_a_permanent_refusal_is_kept_dead_with_its_error(runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    _request(runtime, settings, shop["member_id"])
    smtp_server.rcpt_replies.append("550 5.1.1 No such mailbox here")
    worker.run_until_idle()
    assert smtp_server.received == []
    [job] = _jobs(runtime)
    assert job.status == JobStatus.DEAD
    assert "550 5.1.1 No such mailbox here" in (job.last_error or "")
    [row] = _emails(runtime)
    assert row.status == CardEmailStatus.FAILED
    assert "550" in (row.last_error or "")
    # Asked again (the address fixed, say): a new email, sent.
    second = _request(runtime, settings, shop["member_id"])
    assert second != row.id
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    # The dead job queued again by the operator, as `walletpass jobs --retry` does (its
    # count starts afresh): the failed email is tried again, and sent.
    with runtime.transaction() as s:
        s.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=JobStatus.PENDING, run_at=utcnow(), attempts=0, finished_at=None)
        )
    worker.run_until_idle()
    assert len(smtp_server.received) == 2
    assert smtp_server.received[1].message["Message-ID"] == row.message_id
    assert _emails(runtime)[0].status == CardEmailStatus.SENT


def test_names_with_line_breaks_are_sent_and_an_unusable_address_is_kept_dead(
    runtime, settings, worker, smtp_server
):
    shop = greek_member(runtime, settings, name="Ελένη\r\nBcc: x@evil.test")
    _request(runtime, settings, shop["member_id"])
    worker.run_until_idle()
    [got] = smtp_server.received
    assert got.rcpt_tos == ["eleni@example.test"]  # no header smuggled in
    assert got.message["Bcc"] is None
    assert got.message["To"].addresses[0].display_name == "Ελένη Bcc: x@evil.test"

    other = greek_member(runtime, settings, email="ελένη@example.test")
    _request(runtime, settings, other["member_id"])
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    job = _jobs(runtime)[-1]
    assert job.status == JobStatus.DEAD
    assert "the member's email address cannot be used" in (job.last_error or "")
    assert _emails(runtime)[-1].status == CardEmailStatus.FAILED


def test_the_last_attempt_gives_up_and_says_so(runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    _request(runtime, settings, shop["member_id"])
    with runtime.transaction() as s:  # as if 11 attempts had failed already
        s.execute(update(Job).values(attempts=settings.job_max_attempts - 1))
    smtp_server.data_replies.append("421 4.7.0 Try again later")
    worker.run_until_idle()
    [job] = _jobs(runtime)
    assert job.status == JobStatus.DEAD
    assert f"gave up after {settings.job_max_attempts} attempts" in (job.last_error or "")
    assert _emails(runtime)[0].status == CardEmailStatus.FAILED


# ------------------------------------------------------------------ never sent twice


def test_requests_while_an_email_waits_are_that_email(runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    with runtime.transaction() as s:
        welcome = services.welcome(s, settings, s.get(Member, shop["member_id"]))
        assert welcome is not None
        first = welcome.id
    # The till's "send it again" and the API's, before the worker ran: the same email.
    assert _request(runtime, settings, shop["member_id"], request_key="till:a") == first
    assert _request(runtime, settings, shop["member_id"], request_key="api1:b") == first
    [job] = _jobs(runtime)  # the pending job absorbed the others
    assert job.status == JobStatus.PENDING
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    assert smtp_server.received[0].message["Subject"] == "Η κάρτα σας Καφέ Ήλιος"
    # Once sent, the same request key is still that email (a retried request)...
    assert _request(runtime, settings, shop["member_id"], request_key="till:a") == first
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    # ...and a new request is a new email.
    assert _request(runtime, settings, shop["member_id"], request_key="till:c") != first
    worker.run_until_idle()
    assert len(smtp_server.received) == 2


def test_a_crash_after_the_servers_accept_does_not_send_again(
    runtime, settings, worker, smtp_server, monkeypatch
):
    shop = greek_member(runtime, settings)
    _request(runtime, settings, shop["member_id"])
    crashed: list[int] = []

    def commit_fails_once(ctx: registry.JobContext, job: Job) -> None:
        # Runs in the job's transaction after the handler, before its commit: the
        # database goes away between the SMTP server's accept and the job's "done".
        if not crashed:
            crashed.append(job.id)
            raise RuntimeError("server closed the connection unexpectedly")

    monkeypatch.setitem(registry._DONE_HOOKS, services.JOB_KIND, [commit_fails_once])
    worker.run_until_idle()
    assert crashed
    assert len(smtp_server.received) == 1
    [job] = _jobs(runtime)
    assert job.status == JobStatus.PENDING  # its "done" was rolled back: it runs again
    assert "server closed the connection" in (job.last_error or "")
    assert _emails(runtime)[0].status == CardEmailStatus.SENT  # recorded in its own commit

    make_due(runtime)
    worker.run_until_idle()
    assert len(smtp_server.received) == 1  # not sent twice
    assert _jobs(runtime)[0].status == JobStatus.DONE


def test_a_second_job_waits_while_another_sends_the_email(runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    email_id = _request(runtime, settings, shop["member_id"])
    with runtime.transaction() as s:  # another worker is handing it over right now
        s.get(CardEmail, email_id).sending_until = utcnow() + services_lease()
    worker.run_until_idle()
    assert smtp_server.received == []
    [job] = _jobs(runtime)
    assert job.status == JobStatus.PENDING
    assert (job.last_error or "").endswith("another job is sending this email")
    with runtime.transaction() as s:  # which then records its accept
        row = s.get(CardEmail, email_id)
        row.status, row.sending_until, row.sent_at = CardEmailStatus.SENT, None, utcnow()
    make_due(runtime)
    worker.run_until_idle()
    assert smtp_server.received == []
    assert _jobs(runtime)[0].status == JobStatus.DONE


def services_lease():  # type: ignore[no-untyped-def]
    from walletpass.mail.jobs import SEND_LEASE

    return SEND_LEASE


# ------------------------------------------------------------------ the till and the admin


def _csrf(html: str) -> str:
    match = re.search(r'(?:name="csrf_token" value|data-csrf)="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_the_till_sends_the_card_again(client, runtime, settings, worker, smtp_server):
    shop = greek_member(runtime, settings)
    with runtime.transaction() as s:
        create_user(
            s,
            merchant_id=shop["merchant_id"],
            email="staff@example.test",
            password=PASSWORD,
            role="staff",
        )
    token = _csrf(client.get("/till/login").get_data(as_text=True))
    client.post(
        "/till/login",
        data={"email": "staff@example.test", "password": PASSWORD, "csrf_token": token},
    )
    page = client.get("/till/").get_data(as_text=True)
    assert 'data-card-email-url="/till/api/card-email"' in page
    assert 'id="card-email-btn"' in page
    headers = {"X-CSRF-Token": _csrf(page)}
    body = {"code": shop["code"], "request_key": "mail-0123"}
    r = client.post("/till/api/card-email", json=body, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["status"] == "pending"
    # The page retrying after a lost answer: the same email.
    assert client.post("/till/api/card-email", json=body, headers=headers).json == r.json
    unknown = client.post("/till/api/card-email", json={"code": "NOPE"}, headers=headers)
    assert unknown.status_code == 404
    worker.run_until_idle()
    [got] = smtp_server.received
    assert got.rcpt_tos == ["eleni@example.test"]
    [row] = _emails(runtime)
    assert row.source.startswith("staff:")


def test_the_admin_sends_the_card_again_and_lists_the_emails(
    client, runtime, settings, worker, smtp_server
):
    shop = greek_member(runtime, settings)
    with runtime.transaction() as s:
        create_user(
            s,
            merchant_id=shop["merchant_id"],
            email="owner@example.test",
            password=PASSWORD,
            role="owner",
        )
    with client.session_transaction() as session:
        session["csrf"] = "test-csrf-token-0123456789"
    client.post(
        "/admin/login",
        data={
            "email": "owner@example.test",
            "password": PASSWORD,
            "csrf_token": "test-csrf-token-0123456789",
        },
    )
    page = client.get(f"/admin/members/{shop['member_id']}").get_data(as_text=True)
    assert "Email the card link to eleni@example.test" in page
    key = re.search(r'name="key" value="([0-9a-f-]{36})"[^>]*>\s*<button type="submit">Email', page)
    assert key, page
    with client.session_transaction() as session:  # signing in gave the session a new one
        form = {"key": key.group(1), "csrf_token": session["csrf"]}
    url = f"/admin/members/{shop['member_id']}/card-email"
    assert client.post(url, data=form).status_code == 302
    assert client.post(url, data=form).status_code == 302  # a double submit: one email
    worker.run_until_idle()
    assert len(smtp_server.received) == 1
    page = client.get(f"/admin/members/{shop['member_id']}").get_data(as_text=True)
    assert re.search(r"resend ·\s*<span[^>]*>sent</span>", page), page


# ------------------------------------------------------------------ the pseudo-language


def test_every_text_of_the_email_goes_through_the_catalogue(runtime, settings, worker, smtp_server):
    from pseudo_support import english_left

    shop = greek_member(runtime, settings, language="en-XA", name="Ana")
    with runtime.transaction() as s:
        services.welcome(s, settings, s.get(Member, shop["member_id"]))
    worker.run_until_idle()
    [got] = smtp_server.received
    # What the test put there: the member's name, the shop's, its program's, the link.
    allowed = {"Ana", "Καφέ Ήλιος", "Κάρτα καφέ", f"{PUBLIC}/p/{shop['serial']}"}
    assert english_left(str(got.message["Subject"]), allowed) == []
    assert english_left(got.text, allowed) == []
    assert english_left(got.html, {*allowed, "en-XA"}, html=True) == []


# ------------------------------------------------------------------ STARTTLS and login


def test_starttls_with_a_login(runtime, settings, worker, tmp_path, monkeypatch):
    import ssl

    from standins.tls import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server = SmtpCatcher(tls_context=context, logins={"cards": "s3cret pass"})
    server.start()
    try:
        # The client trusts the test CA (ssl's default verify paths read SSL_CERT_FILE).
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))
        tls_settings = settings.override(
            smtp_url=f"smtp+starttls://cards:s3cret%20pass@127.0.0.1:{server.port}"
        )
        monkeypatch.setattr(runtime, "settings", tls_settings)
        shop = greek_member(runtime, tls_settings)
        _request(runtime, tls_settings, shop["member_id"])
        worker.run_until_idle()
        [got] = server.received
        assert (got.tls, got.login) == (True, "cards")
        assert got.message["Subject"] == "Η κάρτα σας Καφέ Ήλιος"
    finally:
        server.stop()


def test_smtps_with_tls_from_the_start(runtime, settings, worker, tmp_path, monkeypatch):
    import ssl

    from standins.tls import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server = SmtpCatcher(implicit_tls=context)
    server.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))
        tls_settings = settings.override(smtp_url=f"smtps://127.0.0.1:{server.port}")
        monkeypatch.setattr(runtime, "settings", tls_settings)
        shop = greek_member(runtime, tls_settings)
        _request(runtime, tls_settings, shop["member_id"])
        worker.run_until_idle()
        [got] = server.received
        assert got.tls is True
        assert got.rcpt_tos == ["eleni@example.test"]
    finally:
        server.stop()


def test_a_wrong_smtp_password_waits_for_the_operator(
    runtime, settings, worker, tmp_path, monkeypatch
):
    import ssl

    from standins.tls import make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server = SmtpCatcher(tls_context=context, logins={"cards": "right"})
    server.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))
        wrong = f"smtp+starttls://cards:wrong-password@127.0.0.1:{server.port}"
        monkeypatch.setattr(runtime, "settings", settings.override(smtp_url=wrong))
        shop = greek_member(runtime, settings)
        _request(runtime, settings, shop["member_id"])
        worker.run_until_idle()
        [job] = _jobs(runtime)
        assert job.status == JobStatus.PENDING  # kept for when the login is fixed
        assert "refused the login (535" in (job.last_error or "")
        assert "wrong-password" not in (job.last_error or "")
        assert server.received == []
    finally:
        server.stop()


def test_erasing_a_member_forgets_the_addresses_and_sends_nothing_more(
    client, runtime, settings, worker, smtp_server
):
    shop = greek_member(runtime, settings)
    _request(runtime, settings, shop["member_id"])
    worker.run_until_idle()
    waiting = _request(runtime, settings, shop["member_id"], request_key="till:later")
    with runtime.transaction() as s:
        _, key = create_api_key(s, merchant_id=shop["merchant_id"], scope="crm", name="crm")
    erased = client.delete(
        f"/api/v1/members/{shop['member_id']}", headers={"Authorization": f"Bearer {key}"}
    )
    assert erased.status_code == 204
    worker.run_until_idle()
    assert len(smtp_server.received) == 1  # the one sent before, not the waiting one
    sent, pending = _emails(runtime)
    assert pending.id == waiting
    assert (sent.status, sent.recipient) == ("sent", None)
    assert (pending.status, pending.last_error) == ("failed", "the member's data was erased")
