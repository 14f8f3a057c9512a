"""The outbox job that sends one card email: at most once per accept by the server.

Its steps each commit on their own, not with the job (the job's transaction commits
after the handler returns, and may fail then):

1. claim the email (``sending_until``), so no second job sends it meanwhile;
2. read what it says, and hand it to the SMTP server;
3. record at once that the server took it (``sent``): a job run again after this, its
   own commit having failed or its worker having died, finds it sent and sends nothing.

Only a crash between 2 and 3 can send a message twice, and then as the same message
(its Message-ID was fixed at the request), which mail clients show once.

A 4xx reply or a server out of reach is retried with the outbox's backoff; a 5xx reply,
an address gone or a member without a card is kept as dead with its reason (the email
row says ``failed``), as is an email still unsent after the last attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import MessageError
from typing import Any
from urllib.parse import quote

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from walletpass import db
from walletpass.db import rowcount, utcnow
from walletpass.jobs.models import Job
from walletpass.jobs.queue import attempts_for
from walletpass.jobs.registry import JobContext, PermanentFailure, RetryLater, handler
from walletpass.loyalty.models import Member, Program
from walletpass.mail import smtp
from walletpass.mail.message import CardEmailContent, compose
from walletpass.mail.models import CardEmail, CardEmailReason, CardEmailStatus
from walletpass.mail.services import JOB_KIND
from walletpass.passes.models import Pass, PassStatus
from walletpass.tenancy.models import Merchant

log = logging.getLogger(__name__)

# How long a job may take to hand an email over before another job may: well past the
# SMTP client's timeouts for connecting and for each reply.
SEND_LEASE = timedelta(seconds=smtp.TIMEOUT_S * 10)


class _Gone(Exception):
    """The email can no longer be sent (recorded as failed, the job kept as dead)."""


@dataclass(frozen=True)
class _Claim:
    email_id: int
    attempts: int


@handler(JOB_KIND)
def send_card_email(ctx: JobContext, job: Job) -> None:
    email_id = int(job.payload.get("card_email_id", 0))
    # Nothing is done in the job's own session until the handler returns: on SQLite its
    # first statement takes the write lock, which the steps' own commits need.
    side = db.make_sessionmaker(ctx.session.get_bind())
    server = ctx.settings.smtp_server
    if server is None:
        # This worker was started without WALLETPASS_SMTP_URL (the web process that
        # queued the email has it): wait for one that has, rather than drop the email.
        error = "WALLETPASS_SMTP_URL is not set on this worker"
        if job.attempts >= attempts_for(job, ctx.settings):
            _record_failure(side, job.merchant_id, email_id, error, final=True)
            raise PermanentFailure(f"gave up after {job.attempts} attempts: {error}")
        raise RetryLater(error)
    now = utcnow()
    # A first attempt that carries an error: a dead job queued again by an operator.
    retried = job.attempts == 1 and job.last_error is not None
    claim = _claim(side, job.merchant_id, email_id, now, reopen=retried)
    if claim is None:
        return
    try:
        content = _content(side, ctx.settings.public_url, ctx.settings.mail_from, job, email_id)
    except _Gone as exc:
        _record_failure(side, job.merchant_id, email_id, str(exc), final=True)
        raise PermanentFailure(str(exc)) from None
    try:
        message = compose(content, now=now)
    except (ValueError, MessageError) as exc:
        error = f"the member's email address cannot be used: {exc}"
        _record_failure(side, job.merchant_id, email_id, error, final=True)
        raise PermanentFailure(error) from None
    try:
        recipient = smtp.send(server, message)
    except smtp.SmtpError as exc:
        final = exc.permanent or job.attempts >= attempts_for(job, ctx.settings)
        _record_failure(side, job.merchant_id, email_id, str(exc), final=final)
        if exc.permanent:
            raise PermanentFailure(str(exc)) from None
        if final:
            raise PermanentFailure(f"gave up after {job.attempts} attempts: {exc}") from None
        raise RetryLater(str(exc)) from None
    _record_sent(side, job.merchant_id, email_id, recipient, content.language)
    log.info(
        "card email %s (member %s, %s) accepted by the SMTP server on attempt %d",
        email_id,
        job.payload.get("member_id", "?"),
        content.language,
        claim.attempts,
    )


def _claim(
    side: sessionmaker[Session],
    merchant_id: int | None,
    email_id: int,
    now: datetime,
    *,
    reopen: bool,
) -> _Claim | None:
    """Take the email for this job, or None when there is nothing left to send.

    :param reopen: a failed email is tried again: its job was kept as dead, and an
        operator queued it again (``walletpass jobs --retry``, which starts its count
        afresh and keeps its last error), having fixed what failed it.
    :raise RetryLater: another job is handing it over right now; this one looks again
        when that one's lease is up (and then, usually, finds it sent).
    """
    with db.transaction(side, merchant_id) as session:
        if reopen:
            session.execute(
                update(CardEmail)
                .where(CardEmail.id == email_id, CardEmail.status == CardEmailStatus.FAILED)
                .values(status=CardEmailStatus.PENDING)
                .execution_options(synchronize_session=False)
            )
        mine = (
            (CardEmail.id == email_id)
            & (CardEmail.status == CardEmailStatus.PENDING)
            & or_(CardEmail.sending_until.is_(None), CardEmail.sending_until < now)
        )
        taken = session.execute(
            update(CardEmail)
            .where(mine)
            .values(sending_until=now + SEND_LEASE, attempts=CardEmail.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if rowcount(taken) == 1:
            attempts = session.scalars(
                select(CardEmail.attempts).where(CardEmail.id == email_id)
            ).one()
            return _Claim(email_id, attempts)
        found = session.execute(
            select(CardEmail.status, CardEmail.sending_until).where(CardEmail.id == email_id)
        ).first()
    if found is None or found.status != CardEmailStatus.PENDING:
        return None  # sent by an earlier run, failed for good, or its member erased
    wait = (found.sending_until - now).total_seconds() if found.sending_until else 1.0
    raise RetryLater("another job is sending this email", delay=max(wait, 1.0))


def _content(
    side: sessionmaker[Session], public_url: str, sender: str, job: Job, email_id: int
) -> CardEmailContent:
    with db.transaction(side, job.merchant_id, readonly=True) as session:
        row = session.get(CardEmail, email_id)
        member = session.get(Member, row.member_id) if row is not None else None
        if row is None or member is None:
            raise _Gone("the member was deleted")
        if not member.email:
            raise _Gone("the member has no email address")
        card = session.scalars(
            select(Pass)
            .where(
                Pass.member_id == member.id,
                Pass.coupon_id.is_(None),
                Pass.status == PassStatus.ACTIVE,
            )
            .order_by(Pass.id.desc())
            .limit(1)
        ).first()
        if card is None:
            raise _Gone("the member has no active card")
        program = session.get(Program, member.program_id)
        merchant = session.get(Merchant, member.merchant_id)
        assert program is not None
        assert merchant is not None
        return CardEmailContent(
            language=member.language,
            merchant_name=merchant.name,
            program_name=program.name,
            member_name=member.name,
            recipient=member.email,
            card_url=public_url.rstrip("/") + quote(f"/p/{card.serial}"),
            welcome=row.reason == CardEmailReason.WELCOME,
            message_id=row.message_id,
            sender=sender,
        )


def _record_sent(
    side: sessionmaker[Session],
    merchant_id: int | None,
    email_id: int,
    recipient: str,
    language: str,
) -> None:
    _update(
        side,
        merchant_id,
        email_id,
        status=CardEmailStatus.SENT,
        sent_at=utcnow(),
        recipient=recipient,
        language=language,
        last_error=None,
        sending_until=None,
    )


def _record_failure(
    side: sessionmaker[Session], merchant_id: int | None, email_id: int, error: str, *, final: bool
) -> None:
    values: dict[str, Any] = {"last_error": error[:2000], "sending_until": None}
    if final:
        values["status"] = CardEmailStatus.FAILED
    _update(side, merchant_id, email_id, **values)


def _update(
    side: sessionmaker[Session], merchant_id: int | None, email_id: int, **values: Any
) -> None:
    with db.transaction(side, merchant_id) as session:
        session.execute(
            update(CardEmail)
            .where(CardEmail.id == email_id, CardEmail.status == CardEmailStatus.PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
