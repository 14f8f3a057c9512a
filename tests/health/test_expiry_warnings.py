"""The expiry warning emails, through the outbox and a real SMTP server (aiosmtpd): each
owner is told once per certificate and threshold, however often the daily job runs."""

from __future__ import annotations

from datetime import timedelta

import factories
import pytest
from healthkit import chain_settings, fresh_caches, with_settings
from mail_support import MAIL_FROM, smtp_server
from sqlalchemy import select

from walletpass.db import utcnow
from walletpass.health import warnings
from walletpass.health.models import CertificateWarning, WarningStatus
from walletpass.jobs.models import Job, JobStatus
from walletpass.jobs.worker import Worker
from walletpass.tenancy.users import create_user

__all__ = ["chain_settings", "fresh_caches", "smtp_server"]  # fixtures, used below
pytestmark = pytest.mark.usefixtures("fresh_caches")

PASSWORD = "correct horse battery"


def _shop(runtime, name: str, language: str, owners: list[str], others: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        m = factories.merchant(s, name=name, language=language)
        for email in owners:
            create_user(s, merchant_id=m.id, email=email, password=PASSWORD, role="owner")
        for email in others:
            create_user(s, merchant_id=m.id, email=email, password=PASSWORD, role="marketer")


def _run(runtime, settings) -> int:  # type: ignore[no-untyped-def]
    """One daily look and every email it queued, as a worker runs them."""
    rt = with_settings(runtime, settings)
    with rt.transaction() as s:
        warnings.schedule(s)
        s.execute(
            Job.__table__.update().where(Job.status == JobStatus.PENDING).values(run_at=utcnow())
        )
    handled = Worker(rt, name="health-test").run_until_idle()
    return handled


def _rows(runtime) -> list[CertificateWarning]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return list(s.scalars(select(CertificateWarning).order_by(CertificateWarning.id)))


def test_owners_get_one_email_per_certificate_and_threshold(runtime, chain_settings, smtp_server):
    settings = chain_settings(days_left=10, smtp_url=smtp_server.url, mail_from=MAIL_FROM)
    _shop(runtime, "Café Athena", "el", ["eleni@athena.test"], others=("nikos@athena.test",))
    _shop(runtime, "Taipei Tea", "zh-Hant", ["mei@tea.test"])

    _run(runtime, settings)
    _run(runtime, settings)  # the next day, or a second worker: nothing more

    received = sorted(smtp_server.received, key=lambda r: r.rcpt_tos[0])
    assert [r.rcpt_tos for r in received] == [["eleni@athena.test"], ["mei@tea.test"]]
    greek, chinese = received
    end = (utcnow() + timedelta(days=10)).strftime("%Y-%m-%d")
    assert end in greek.text
    assert "pass.test.walletpass" in greek.text
    assert greek.message["Content-Language"] == "el"
    assert "σε 10 ημέρες" in str(greek.message["Subject"])
    assert "Wallet" in str(chinese.message["Subject"])
    assert chinese.message["Content-Language"] == "zh-Hant"
    assert "/admin/health" in chinese.html
    rows = _rows(runtime)
    # Only the pass certificate is near its end (the dev CA has ten years), and 10 days
    # left is within the 30-day threshold, not yet the 7-day one.
    assert {(r.kind, r.threshold_days, r.status) for r in rows} == {
        ("pass", 30, WarningStatus.SENT)
    }
    assert len(rows) == 2


def test_the_next_threshold_sends_again_once(runtime, chain_settings, smtp_server):
    settings = chain_settings(days_left=10, smtp_url=smtp_server.url, mail_from=MAIL_FROM)
    _shop(runtime, "Café Athena", "en", ["eleni@athena.test"])
    rt = with_settings(runtime, settings)
    _run(runtime, settings)
    assert len(smtp_server.received) == 1

    # Six days later the same certificate has 4 days left: the 7-day warning, once.
    later = utcnow() + timedelta(days=6)
    for _ in range(2):
        with rt.transaction() as s:
            warnings.queue_warnings(s, settings, later)
        Worker(rt, name="health-test").run_until_idle()

    assert len(smtp_server.received) == 2
    assert sorted(r.threshold_days for r in _rows(runtime)) == [7, 30]


def test_thresholds():
    assert warnings.threshold_for(31) is None
    assert warnings.threshold_for(30) == 30
    assert warnings.threshold_for(10) == 30
    assert warnings.threshold_for(7) == 7
    assert warnings.threshold_for(1) == 1
    assert warnings.threshold_for(-1) == 0


def test_a_warning_job_run_twice_sends_once(runtime, chain_settings, smtp_server):
    settings = chain_settings(days_left=3, smtp_url=smtp_server.url, mail_from=MAIL_FROM)
    _shop(runtime, "Café Athena", "en", ["eleni@athena.test"])
    rt = with_settings(runtime, settings)
    now = utcnow()
    with rt.transaction() as s:
        assert warnings.queue_warnings(s, settings, now) == 1
    with rt.transaction() as s:  # a retry of the same daily job
        assert warnings.queue_warnings(s, settings, now) == 0
    Worker(rt, name="health-test").run_until_idle()

    [only] = smtp_server.received
    assert "in 3 days" in only.text
    [row] = _rows(runtime)
    assert (row.threshold_days, row.status, row.recipient) == (7, "sent", "eleni@athena.test")


def test_a_refused_email_is_kept_failed_and_not_sent_again(runtime, chain_settings, smtp_server):
    settings = chain_settings(days_left=3, smtp_url=smtp_server.url, mail_from=MAIL_FROM)
    _shop(runtime, "Café Athena", "en", ["eleni@athena.test"])
    smtp_server.rcpt_replies.append("550 5.1.1 no such mailbox")

    _run(runtime, settings)
    _run(runtime, settings)

    assert smtp_server.received == []
    [row] = _rows(runtime)
    assert row.status == WarningStatus.FAILED
    assert "550" in (row.last_error or "")


def test_a_warning_still_refused_at_its_last_attempt_is_kept_failed(
    runtime, chain_settings, smtp_server
):
    settings = chain_settings(
        days_left=3, smtp_url=smtp_server.url, mail_from=MAIL_FROM, job_max_attempts=1
    )
    _shop(runtime, "Café Athena", "en", ["eleni@athena.test"])
    smtp_server.data_replies.append("451 4.3.0 Mail server temporarily rejected message")

    _run(runtime, settings)

    assert smtp_server.received == []
    [row] = _rows(runtime)
    assert row.status == WarningStatus.FAILED  # not pending behind a dead job
    assert "451" in (row.last_error or "")
    with runtime.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == warnings.MAIL_KIND)).one()
    assert job.status == JobStatus.DEAD


def test_without_smtp_nothing_is_recorded(runtime, chain_settings):
    settings = chain_settings(days_left=3)
    _shop(runtime, "Café Athena", "en", ["eleni@athena.test"])

    _run(runtime, settings)

    assert _rows(runtime) == []
    with runtime.transaction() as s:
        # The daily look is queued again for tomorrow.
        [next_look] = s.scalars(
            select(Job).where(Job.kind == warnings.SWEEP_KIND, Job.status == JobStatus.PENDING)
        ).all()
        assert next_look.run_at > utcnow() + timedelta(hours=23)


def test_a_certificate_far_from_its_end_sends_nothing(runtime, chain_settings, smtp_server):
    settings = chain_settings(days_left=90, smtp_url=smtp_server.url, mail_from=MAIL_FROM)
    _shop(runtime, "Café Athena", "en", ["eleni@athena.test"])

    _run(runtime, settings)

    assert smtp_server.received == []
    assert _rows(runtime) == []
