"""The dashboard: the merchant's KPIs over a period, drawn with plotly."""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from typing import Any

from flask import Response, render_template, request, url_for
from plotly.offline import get_plotlyjs

from walletpass import analytics
from walletpass.admin import charts
from walletpass.admin.views.common import bp, merchant_tz, runtime, tx, user
from walletpass.db import utcnow
from walletpass.health.expiry import CertificateDate, cached_dates
from walletpass.tenancy.models import Merchant
from walletpass.web.i18n import current_language


@bp.get("/")
def dashboard() -> Any:
    days = request.args.get("days", type=int) or 30
    if days not in analytics.PERIODS:
        days = 30
    with tx() as session:
        tz = merchant_tz(session)
        merchant = session.get(Merchant, user().merchant_id)
        data = analytics.dashboard(session, analytics.Period.ending(utcnow(), days, tz))
    currency = merchant.currency if merchant else ""
    return render_template(
        "admin/dashboard.html",
        expiring=_expiring(),
        data=data,
        days=days,
        periods=analytics.PERIODS,
        currency=currency,
        charts=charts.dashboard_charts(data, current_language()),
        plotly_src=url_for("admin.plotly_js", v=charts.plotly_version()),
    )


def _expiring() -> tuple[CertificateDate, int] | None:
    """The certificate nearest its end if that is within 30 days, and its days left: the
    banner that sends the owner to the Health page."""
    now = utcnow()
    soon = [c for c in cached_dates(runtime()) if c.kind != "apns" and c.expiring(now)]
    if not soon:
        return None
    first = min(soon, key=lambda c: c.not_after)
    return first, first.days_left(now)


@functools.cache
def _plotly_bundle() -> tuple[bytes, str]:
    body = get_plotlyjs().encode("utf-8")
    return body, hashlib.sha256(body).hexdigest()[:32]


@bp.get("/static/plotly.js")
def plotly_js() -> Response:
    """plotly.js from the installed plotly package (never a copy in the repo).

    The URL carries the package version, so the file can be cached for a year and a
    plotly upgrade still reaches every browser.
    """
    body, etag = _plotly_bundle()
    response = Response(body, mimetype="text/javascript")
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.max_age = 31_536_000
    response.cache_control.immutable = True
    response.last_modified = datetime(2000, 1, 1)
    response.make_conditional(request)  # in place: werkzeug's signature returns its base class
    return response
