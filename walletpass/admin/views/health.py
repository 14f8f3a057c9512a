"""Health: what `walletpass doctor` finds, for the merchant's owner, warnings first."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from flask_babel import gettext

from walletpass.admin.views.common import bp, runtime, user
from walletpass.health.doctor import run_checks
from walletpass.health.findings import Finding, Status, by_severity, worst
from walletpass.tenancy.models import Role


@bp.get("/health")
def health() -> Any:
    """The checks on files and settings; with ``?network=1`` also the dry push to APNs and
    the calls to the public URL and Google (a few seconds at most each)."""
    # The certificates are the installation's: the owner acts on them, a marketer cannot.
    if user().role != Role.OWNER:
        abort(403)
    network = request.args.get("network") == "1"
    found = by_severity(run_checks(runtime(), network=network))
    rows = [_row(f) for f in found]
    return render_template(
        "admin/health.html",
        rows=rows,
        overall=str(worst(found)),
        network=network,
        mail_off=runtime().settings.smtp_server is None,
    )


def _row(finding: Finding) -> dict[str, Any]:
    return {
        "status": str(finding.status),
        "title": gettext(finding.title),
        "message": finding.text(gettext),
        "subject": finding.subject,
        "facts": finding.facts,
        "attention": finding.status is not Status.OK,
    }
