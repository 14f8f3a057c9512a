"""Asking for a card email: the row and its outbox job, in the caller's transaction.

The join page and the API's enrolment ask for the welcome email of a member they have
just created (:func:`welcome`); the till, the admin and the API's "send my card again"
ask for one on request (:func:`request_card_email`). Nothing here talks to the SMTP
server: the job does (walletpass.mail.jobs), after the request's transaction commits.
"""

from __future__ import annotations

import secrets
from email.utils import parseaddr
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.config import Settings
from walletpass.i18n.catalogues import N_
from walletpass.jobs.queue import enqueue
from walletpass.loyalty.models import Member
from walletpass.mail.models import CardEmail, CardEmailReason, CardEmailStatus

JOB_KIND = "mail.card"


class MailNotConfigured(errors.WalletpassError):
    # A 409, not a 503: the installation is up and answers; it is its state (no SMTP
    # server) that the request conflicts with, and the API answers no 5xx by design
    # (tests/api/test_schemathesis.py checks every operation for it).
    status = 409
    code = "mail-not-configured"
    title = "Card emails are off: no SMTP server is configured"


class NoEmailAddress(errors.WalletpassError):
    status = 409
    code = "no-email-address"
    title = "This member has no email address"


def off_reason(settings: Settings) -> str | None:
    """Why card emails cannot be sent here, for the admin to show; None when they can."""
    if settings.smtp_server is None:
        # Marked here, translated where it is shown (the admin's page language).
        return N_("WALLETPASS_SMTP_URL is not set, so no email can be sent.")
    return None


def dedupe_key(card_email_id: int) -> str:
    return f"{JOB_KIND}:{card_email_id}"


def welcome(session: Session, settings: Settings, member: Member) -> CardEmail | None:
    """Queue the welcome email of a member created now; nothing (and no error) without
    an address or without SMTP configured: joining never fails for an email."""
    if settings.smtp_server is None or not member.email:
        return None
    return request_card_email(
        session, settings, member, reason=CardEmailReason.WELCOME, source="join"
    )


def request_card_email(
    session: Session,
    settings: Settings,
    member: Member,
    *,
    reason: CardEmailReason = CardEmailReason.RESEND,
    source: str = "",
    request_key: str | None = None,
) -> CardEmail:
    """Queue an email with the member's card link, in the caller's transaction.

    Never two emails for one wish: the same ``request_key`` (a double submit, a retried
    request) is the email already asked for, and an email still waiting to be sent
    absorbs a new request (a welcome email not yet out and a "send it again" at the
    till are one email). Once one is sent, a new request is a new email.

    :raise MailNotConfigured: no SMTP server (WALLETPASS_SMTP_URL).
    :raise NoEmailAddress: the member has none to send to.
    """
    if settings.smtp_server is None:
        raise MailNotConfigured(
            "card emails are off: WALLETPASS_SMTP_URL is not set on this installation"
        )
    if not member.email:
        raise NoEmailAddress(f"member {member.id} has no email address; add one first")
    found = None
    if request_key:
        found = _by_key(session, member.merchant_id, request_key)
    if found is None:
        found = session.scalars(
            select(CardEmail)
            .where(CardEmail.member_id == member.id, CardEmail.status == CardEmailStatus.PENDING)
            .order_by(CardEmail.id)
            .limit(1)
        ).first()
        if found is not None and request_key and found.request_key is None:
            # The waiting email answers this request too: its retry, after the email is
            # out, must find it rather than send another (one key per email is kept).
            found.request_key = request_key
    if found is not None:
        if found.status == CardEmailStatus.PENDING:
            _queue(session, found)
        return found
    row = CardEmail(
        merchant_id=member.merchant_id,
        member_id=member.id,
        reason=reason,
        source=source[:64],
        request_key=request_key,
        message_id=new_message_id(settings),
        status=CardEmailStatus.PENDING,
    )
    try:
        # A savepoint: a twin request with the same key committed first (two taps sent
        # at once); only this insert is undone, and the twin's email is the answer.
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        if not request_key:
            raise
        again = _by_key(session, member.merchant_id, request_key)
        assert again is not None
        return again
    _queue(session, row)
    return row


def forget_member(session: Session, member_id: int) -> None:
    """A member's personal data erased: the addresses their emails went to go too, and
    an email still waiting is not sent."""
    session.execute(
        update(CardEmail)
        .where(CardEmail.member_id == member_id, CardEmail.status == CardEmailStatus.PENDING)
        .values(status=CardEmailStatus.FAILED, last_error="the member's data was erased")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(CardEmail)
        .where(CardEmail.member_id == member_id)
        .values(recipient=None)
        .execution_options(synchronize_session=False)
    )


def recent(session: Session, member_id: int, limit: int = 5) -> list[CardEmail]:
    """A member's latest card emails, newest first (the admin's member page)."""
    return list(
        session.scalars(
            select(CardEmail)
            .where(CardEmail.member_id == member_id)
            .order_by(CardEmail.id.desc())
            .limit(limit)
        )
    )


def _by_key(session: Session, merchant_id: int, request_key: str) -> CardEmail | None:
    return session.scalars(
        select(CardEmail).where(
            CardEmail.merchant_id == merchant_id, CardEmail.request_key == request_key
        )
    ).one_or_none()


def _queue(session: Session, row: CardEmail) -> None:
    # A job still pending for this email absorbs this one (the dedupe key); a job that
    # is running or dead does not, and a new one is queued: it sends the email unless
    # the running one has (its sent_at is then set, and the new job sends nothing).
    enqueue(
        session,
        JOB_KIND,
        {"card_email_id": row.id, "member_id": row.member_id},
        merchant_id=row.merchant_id,
        dedupe_key=dedupe_key(row.id),
    )


def new_message_id(settings: Settings) -> str:
    """A Message-ID at the sender's domain (else the public address's host), fixed for
    the email from its request on: every retry sends the very same message."""
    sender = parseaddr(settings.mail_from)[1]
    domain = sender.rpartition("@")[2] or urlsplit(settings.public_url).hostname or "localhost"
    return f"<card.{secrets.token_hex(12)}@{domain}>"
