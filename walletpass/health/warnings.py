"""Certificate expiry emails: a daily job, and one outbox job per email.

Once a day ``health.expiry_warnings`` looks at every certificate in use (the pass
certificate, which also authenticates the pushes, and its intermediate). One within 30, 7
or 1 days of its end (or past it) gets an email to each active owner of every merchant
it signs for, once per certificate and threshold: the row in ``certificate_warnings``
and its ``health.expiry_mail`` job are written in the same transaction, under a unique
key, so the job run twice or retried queues nothing more. A certificate first seen 5
days before its end gets the 7-day email only, not the 30-day one as well.

Without WALLETPASS_SMTP_URL nothing is recorded: the warnings go out once it is set.
The email job hands the message over like the card emails do (walletpass.mail.jobs): its
steps commit on their own, "sent" right after the server accepted it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from walletpass import db
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.health.checks import days_left, fmt_date
from walletpass.health.expiry import CertificateDate, certificate_dates
from walletpass.health.models import CertificateWarning, WarningStatus
from walletpass.i18n.catalogues import text
from walletpass.jobs.models import Job
from walletpass.jobs.queue import attempts_for, enqueue
from walletpass.jobs.registry import JobContext, PermanentFailure, RetryLater, handler, periodic
from walletpass.mail import smtp
from walletpass.tenancy.models import Merchant, Role, User

log = logging.getLogger(__name__)

SWEEP_KIND = "health.expiry_warnings"
MAIL_KIND = "health.expiry_mail"
SWEEP_INTERVAL = timedelta(days=1)
# Days before the end at which an owner is told; 0: it has expired.
THRESHOLDS = (30, 7, 1, 0)
# Kinds emailed: "apns" is the pass certificate itself today, one email is enough.
EMAILED_KINDS = ("pass", "wwdr")

_html = Environment(
    loader=PackageLoader("walletpass.health", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def threshold_for(days: int) -> int | None:
    """The smallest threshold ``days`` has reached, or None while more than 30 are left."""
    reached = [t for t in THRESHOLDS if days <= t]
    return min(reached) if reached else None


def queue_warnings(session: Session, settings: Settings, now: datetime) -> int:
    """Record and queue the warnings due now; returns how many were queued.

    :raise sqlalchemy.exc.IntegrityError: another run inserted the same warning at the
        same moment; the job is retried and then finds it recorded.
    """
    if settings.smtp_server is None:
        return 0
    due: list[tuple[CertificateDate, int]] = []
    for cert in certificate_dates(session, settings):
        threshold = threshold_for(cert.days_left(now))
        if cert.kind in EMAILED_KINDS and threshold is not None:
            due.append((cert, threshold))
    if not due:
        return 0
    owners = list(
        session.scalars(
            select(User)
            .where(User.role == Role.OWNER, User.active.is_(True))
            .order_by(User.id)
            .execution_options(all_merchants=True)
        )
    )
    queued = 0
    for cert, threshold in due:
        # A merchant's own certificate concerns its owners only; the installation's, every
        # shop whose passes it signs.
        to = [o for o in owners if cert.merchant_id in (None, o.merchant_id)]
        for owner in to:
            exists = session.scalar(
                select(CertificateWarning.id)
                .where(
                    CertificateWarning.fingerprint == cert.fingerprint,
                    CertificateWarning.threshold_days == threshold,
                    CertificateWarning.user_id == owner.id,
                )
                .execution_options(all_merchants=True)
            )
            if exists is not None:
                continue
            row = CertificateWarning(
                merchant_id=owner.merchant_id,
                fingerprint=cert.fingerprint,
                kind=cert.kind,
                pass_type_id=cert.pass_type_id,
                threshold_days=threshold,
                not_after=cert.not_after,
                user_id=owner.id,
            )
            session.add(row)
            session.flush()
            enqueue(
                session,
                MAIL_KIND,
                {"warning_id": row.id},
                merchant_id=owner.merchant_id,
                dedupe_key=f"{MAIL_KIND}:{row.id}",
            )
            queued += 1
    return queued


@handler(SWEEP_KIND)
def expiry_warnings(ctx: JobContext, job: Job) -> None:
    queued = queue_warnings(ctx.session, ctx.settings, utcnow())
    if queued:
        log.info("queued %d certificate expiry warning emails", queued)
    schedule(ctx.session, utcnow() + SWEEP_INTERVAL)


@periodic
def schedule(session: Session, run_at: datetime | None = None) -> None:
    """Make sure the daily look is queued (idempotent: one pending at a time)."""
    enqueue(
        session,
        SWEEP_KIND,
        {},
        merchant_id=None,
        dedupe_key="health:expiry-warnings",
        run_at=run_at or utcnow(),
    )


# ------------------------------------------------------------------ the email


@dataclass(frozen=True)
class WarningContent:
    language: str
    merchant_name: str
    recipient: str
    recipient_name: str
    kind: str
    pass_type_id: str
    not_after: datetime
    days: int
    admin_url: str


def compose(content: WarningContent, sender: str, now: datetime) -> EmailMessage:
    texts = _texts(content)
    message = EmailMessage()
    message["Subject"] = texts["subject"]
    message["From"] = Address("walletpass", addr_spec=parseaddr(sender)[1])
    message["To"] = Address(content.recipient_name, addr_spec=content.recipient)
    message["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "walletpass.invalid"
    message["Message-ID"] = f"<cert-warning.{secrets.token_hex(12)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "\n\n".join([texts["what"], texts["why"], texts["how"], content.admin_url]) + "\n"
    )
    html = _html.get_template("health/expiry_warning.html").render(
        lang=content.language, texts=texts, admin_url=content.admin_url
    )
    message.add_alternative(html, subtype="html")
    message["Content-Language"] = content.language
    return message


def _texts(content: WarningContent) -> dict[str, str]:
    t = text(content.language)
    what_kind = (
        t.gettext("The Pass Type ID certificate of %(pass_type)s", pass_type=content.pass_type_id)
        if content.kind == "pass"
        else t.gettext(
            "The Apple WWDR intermediate certificate of %(pass_type)s",
            pass_type=content.pass_type_id,
        )
    )
    date = fmt_date(content.not_after)
    if content.days <= 0:
        subject = t.gettext("A Wallet certificate has expired")
        what = t.gettext("%(what)s expired on %(date)s.", what=what_kind, date=date)
    else:
        subject = t.ngettext(
            "A Wallet certificate expires in %(num)s day",
            "A Wallet certificate expires in %(num)s days",
            content.days,
        )
        what = t.ngettext(
            "%(what)s expires on %(date)s, in %(num)s day.",
            "%(what)s expires on %(date)s, in %(num)s days.",
            content.days,
            what=what_kind,
            date=date,
        )
    return {
        "subject": subject,
        "what": what,
        "why": t.gettext(
            "After that date Apple Wallet refuses new and updated cards of %(merchant)s, "
            "and no change reaches your customers' phones.",
            merchant=content.merchant_name,
        ),
        "how": t.gettext(
            "Renew the certificate in the Apple Developer portal and import it with "
            "`walletpass certs import`. The Health page of the admin shows what is checked:"
        ),
    }


@handler(MAIL_KIND)
def send_expiry_mail(ctx: JobContext, job: Job) -> None:
    warning_id = int(job.payload.get("warning_id", 0))
    server = ctx.settings.smtp_server
    if server is None:
        raise RetryLater("WALLETPASS_SMTP_URL is not set on this worker")
    # Nothing in the job's own session until the handler returns: on SQLite its first
    # statement takes the write lock, which the steps' own commits need.
    side = db.make_sessionmaker(ctx.session.get_bind())
    now = utcnow()
    content = _content(side, ctx.settings, job.merchant_id, warning_id, now)
    if content is None:
        return  # sent by an earlier run, failed for good, or its owner deleted
    message = compose(content, ctx.settings.mail_from, now)
    try:
        recipient = smtp.send(server, message)
    except smtp.SmtpError as exc:
        # A refusal, or the last attempt the worker gives it: failed for good, as the
        # card emails' rows are, not left pending behind a dead job.
        final = exc.permanent or job.attempts >= attempts_for(job, ctx.settings)
        _record(
            side,
            job.merchant_id,
            warning_id,
            last_error=str(exc)[:2000],
            status=WarningStatus.FAILED if final else WarningStatus.PENDING,
        )
        if exc.permanent:
            raise PermanentFailure(str(exc)) from None
        if final:
            raise PermanentFailure(f"gave up after {job.attempts} attempts: {exc}") from None
        raise RetryLater(str(exc)) from None
    _record(
        side,
        job.merchant_id,
        warning_id,
        status=WarningStatus.SENT,
        sent_at=utcnow(),
        recipient=recipient,
        last_error=None,
    )


def _content(
    side: sessionmaker[Session],
    settings: Settings,
    merchant_id: int | None,
    warning_id: int,
    now: datetime,
) -> WarningContent | None:
    with db.transaction(side, merchant_id) as session:
        row = session.get(CertificateWarning, warning_id)
        if row is None or row.status != WarningStatus.PENDING:
            return None
        owner = session.get(User, row.user_id)
        merchant = session.get(Merchant, row.merchant_id)
        if owner is None or merchant is None or not owner.active:
            return None
        row.attempts += 1
        return WarningContent(
            language=merchant.language,
            merchant_name=merchant.name,
            recipient=owner.email,
            recipient_name=owner.name,
            kind=row.kind,
            pass_type_id=row.pass_type_id,
            not_after=row.not_after,
            days=max(days_left(row.not_after, now), 0),
            admin_url=settings.public_url.rstrip("/") + "/admin/health",
        )


def _record(
    side: sessionmaker[Session], merchant_id: int | None, warning_id: int, **values: object
) -> None:
    with db.transaction(side, merchant_id) as session:
        session.execute(
            update(CertificateWarning)
            .where(
                CertificateWarning.id == warning_id,
                CertificateWarning.status == WarningStatus.PENDING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
