"""Members: search, ledger and scans, point adjustments, passes, CSV import and export."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.admin import imports, services
from walletpass.admin.views.common import bp, merchant_tz, owned, runtime, settings, tx, user
from walletpass.crm import bulk
from walletpass.db import utcnow
from walletpass.loyalty.ledger import Actor, adjust
from walletpass.loyalty.models import LedgerEntry, Member, Program
from walletpass.mail import services as mail
from walletpass.passes.models import Pass
from walletpass.scan.models import Scan
from walletpass.tenancy.models import Merchant

PAGE_SIZE = 25


def _member(session: Session, member_id: int) -> Member:
    return owned(session, Member, member_id)


@bp.get("/members")
def members() -> Any:
    q = (request.args.get("q") or "").strip()[:200]
    page = max(request.args.get("page", type=int) or 1, 1)
    with tx() as session:
        query = select(Member)
        if q:
            like = f"%{q.lower()}%"
            found = [
                func.lower(Member.name).like(like),
                func.lower(Member.email).like(like),
                Member.phone.like(f"%{q}%"),
                func.lower(Member.external_id).like(like),
            ]
            digits = re.sub(r"\D", "", q)
            if digits:
                # Numbers are stored as digits ("+33612345678"): "06 12 34" is typed.
                found.append(Member.phone.like(f"%{digits}%"))
            query = query.where(or_(*found))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(
            session.scalars(
                query.order_by(Member.created_at.desc(), Member.id.desc())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
        programs = {p.id: p.name for p in session.scalars(select(Program))}
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render_template(
        "admin/members.html",
        members=rows,
        q=q,
        page=page,
        pages=pages,
        total=total,
        programs=programs,
    )


@bp.get("/members/<int:member_id>")
def member_detail(member_id: int) -> Any:
    with tx() as session:
        member = _member(session, member_id)
        program = session.get(Program, member.program_id)
        passes = list(
            session.scalars(
                select(Pass).where(Pass.member_id == member.id).order_by(Pass.id.desc())
            )
        )
        ledger = list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.member_id == member.id)
                .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
                .limit(200)
            )
        )
        scans = list(
            session.scalars(
                select(Scan)
                .where(Scan.member_id == member.id)
                .order_by(Scan.created_at.desc(), Scan.id.desc())
                .limit(100)
            )
        )
        card_emails = mail.recent(session, member.id)
        tz = merchant_tz(session)
        merchant = session.get(Merchant, user().merchant_id)
        currency = merchant.currency if merchant else "EUR"
    return render_template(
        "admin/member.html",
        currency=currency,
        member=member,
        program=program,
        passes=passes,
        ledger=ledger,
        scans=scans,
        tz=tz,
        # A fresh key per rendering of the form: a double submit sends the same key
        # twice, and the ledger's idempotency makes that one adjustment.
        adjust_key=str(uuid.uuid4()),
        public_url=settings().public_url.rstrip("/"),
        card_emails=card_emails,
        card_email_key=str(uuid.uuid4()),
        mail_off=mail.off_reason(settings()),
    )


@bp.post("/members/<int:member_id>/card-email")
def member_card_email(member_id: int) -> Any:
    """ "Send my card again": the member's card link by email (walletpass.mail)."""
    key = (request.form.get("key") or "").strip()
    try:
        uuid.UUID(key)
    except ValueError:
        abort(400)
    try:
        with tx() as session:
            mail.request_card_email(
                session,
                settings(),
                _member(session, member_id),
                source=f"staff:{user().id}",
                # The form's key: a double submit is one email.
                request_key=f"admin:{key}",
            )
    except mail.NoEmailAddress:
        flash(_("This member has no email address."), "error")
    except mail.MailNotConfigured:
        flash(_("Card emails are off: no SMTP server is configured."), "error")
    except errors.WalletpassError as exc:
        flash(exc.detail, "error")
    else:
        flash(_("The card link is on its way to the member's email."), "ok")
    return redirect(url_for("admin.member_detail", member_id=member_id))


@bp.post("/members/<int:member_id>/adjust")
def member_adjust(member_id: int) -> Any:
    raw_points = (request.form.get("points") or "").strip()
    reason = (request.form.get("reason") or "").strip()[:500]
    key = (request.form.get("key") or "").strip()
    try:
        points = int(raw_points)
        uuid.UUID(key)
    except ValueError:
        flash(_("Enter a whole number of points (negative to remove)."), "error")
        return redirect(url_for("admin.member_detail", member_id=member_id))
    try:
        with tx() as session:
            member = _member(session, member_id)
            change = adjust(
                session,
                settings(),
                member,
                points=points,
                reason=reason,
                # Namespaced: the form's uuid cannot collide with a till's receipt key.
                key=f"admin-adjust:{key}",
                actor=Actor("staff", str(user().id)),
            )
    except errors.WalletpassError as exc:
        flash(_adjust_refused(exc, member_id, points, reason), "error")
        return redirect(url_for("admin.member_detail", member_id=member_id))
    if change.replayed:
        flash(_("That adjustment was already recorded."), "ok")
    else:
        adjusted = ngettext(
            "Adjusted by %(points)s point.",
            "Adjusted by %(points)s points.",
            abs(points),
            points=format(points, "+d"),
        )
        flash(adjusted, "ok")
    return redirect(url_for("admin.member_detail", member_id=member_id))


def _adjust_refused(exc: errors.WalletpassError, member_id: int, points: int, reason: str) -> str:
    """Why the ledger refused an adjustment (loyalty.ledger.adjust's rules), in words."""
    if not isinstance(exc, errors.ValidationFailed):
        return _("The adjustment was refused.")
    if not reason.strip():
        return _("Give a reason for the adjustment.")
    if points >= 0:
        return _("An adjustment of 0 points changes nothing.")
    with tx() as session:
        balance = _member(session, member_id).points_balance
    return _(
        "The balance is %(balance)s points: removing %(points)s would take it below zero.",
        balance=balance,
        points=-points,
    )


def _member_pass(session: Session, member_id: int, pass_id: int) -> Pass:
    member = _member(session, member_id)
    pass_row = session.get(Pass, pass_id)
    if pass_row is None or pass_row.member_id != member.id:
        abort(404)
    return pass_row


@bp.post("/members/<int:member_id>/passes/<int:pass_id>/void")
def pass_void(member_id: int, pass_id: int) -> Any:
    with tx() as session:
        services.void_pass(session, settings(), _member_pass(session, member_id, pass_id))
    flash(_("Pass voided. It shows as void in the wallet and no longer scans."), "ok")
    return redirect(url_for("admin.member_detail", member_id=member_id))


@bp.post("/members/<int:member_id>/passes/<int:pass_id>/reissue")
def pass_reissue(member_id: int, pass_id: int) -> Any:
    try:
        with tx() as session:
            new = services.reissue_pass(
                session, settings(), _member_pass(session, member_id, pass_id)
            )
            serial = new.serial
    except errors.WalletpassError as exc:
        flash(exc.detail, "error")
    else:
        flash(
            _(
                "Old pass voided; new pass %(serial)s issued. Send the member its link.",
                serial=serial,
            ),
            "ok",
        )
    return redirect(url_for("admin.member_detail", member_id=member_id))


# --- CSV ----------------------------------------------------------------------------------


def _stream_csv(rows: Any, filename: str) -> Response:
    # The same file as `walletpass export members|ledger` (crm/bulk.py), for every
    # program of the merchant.
    merchant_id = user().merchant_id
    rt = runtime()

    def generate() -> Iterator[str]:
        # The transaction lives as long as the download: rows are read batch by batch.
        with rt.transaction(merchant_id) as session:
            yield from rows(session)

    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        # No request context is needed while streaming: the runtime and the merchant
        # were captured above.
        generate(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/members/export.csv")
def members_export() -> Response:
    return _stream_csv(bulk.members_csv, "members")


@bp.get("/members/ledger.csv")
def ledger_export() -> Response:
    return _stream_csv(bulk.ledger_csv, "ledger")


@bp.route("/members/import", methods=["GET", "POST"])
def members_import() -> Any:
    with tx() as session:
        # Archived programs take no new members (the API refuses them too).
        programs = list(
            session.scalars(select(Program).where(Program.active.is_(True)).order_by(Program.name))
        )
        if request.method == "GET":
            return render_template(
                "admin/import.html", programs=programs, columns=imports.COLUMNS, error=None
            )
        program_id = request.form.get("program_id", type=int)
        upload = request.files.get("file")
        error = None
        if not any(p.id == program_id for p in programs):
            error = _("Pick the program the members join.")
        elif upload is None or not upload.filename:
            error = _("Choose a CSV file.")
        if error is None:
            assert upload is not None
            assert program_id is not None
            import_id = uuid.uuid4().hex
            try:
                rows = imports.start_import(
                    session,
                    merchant_id=user().merchant_id,
                    program_id=program_id,
                    data=upload.stream.read(imports.MAX_BYTES + 1),
                    import_id=import_id,
                )
            except imports.CsvImportError as exc:
                error = _(exc.text, **exc.params)
        if error is not None:
            session.rollback()
            return (
                render_template(
                    "admin/import.html", programs=programs, columns=imports.COLUMNS, error=error
                ),
                422,
            )
    flash(ngettext("%(num)s row queued for import.", "%(num)s rows queued for import.", rows), "ok")
    return redirect(url_for("admin.import_progress", import_id=import_id))


@bp.get("/members/import/<import_id>")
def import_progress(import_id: str) -> Any:
    with tx() as session:
        state = imports.status(session, user().merchant_id, import_id)
    if state is None:
        abort(404)
    return render_template("admin/import_progress.html", state=state, import_id=import_id)


@bp.get("/members/import/<import_id>/status")
def import_status(import_id: str) -> Any:
    with tx() as session:
        state = imports.status(session, user().merchant_id, import_id)
    if state is None:
        abort(404)
    return jsonify(state)
