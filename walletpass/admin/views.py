"""The marketer's /admin: sign-in, dashboard, and the shared guard for every admin route.

Access is enforced once, in ``before_request``, for every endpoint of this blueprint
(routes added later included), rather than by a decorator each view could forget. Only
the sign-in page and the stylesheet are public. The other areas register their routes
on the same blueprint from ``views_*`` modules imported at the bottom.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.orm import Session

from walletpass.admin import kpis
from walletpass.db import utcnow
from walletpass.tenancy.models import Merchant, User
from walletpass.web import auth
from walletpass.web.context import current_runtime

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/admin",
)

# Reachable without signing in: the sign-in form needs its stylesheet.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})
# Any signed-in user may sign out (a staff member who wandered in included).
SIGNED_IN_ENDPOINTS = frozenset({"admin.logout"})


@bp.before_request
def _guard() -> Any:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        return auth.check_csrf()
    if endpoint in SIGNED_IN_ENDPOINTS:
        if auth.current_user() is None:
            return redirect(url_for("admin.login"))
        return auth.check_csrf()
    # Roles first, then CSRF: a signed-out visitor is sent to sign in and a staff member
    # gets a 403 whatever they post; only a permitted user can meet a CSRF 400.
    denied = auth.require_role(*auth.ADMIN_ROLES, login_endpoint="admin.login")(lambda: None)()
    if denied is not None:
        return denied
    return auth.check_csrf()


# --- helpers shared by the views_* modules --------------------------------------------------


# The views_* modules call it by this name.
runtime = current_runtime


def settings() -> Any:
    return runtime().settings


def user() -> User:
    signed_in = auth.current_user()
    # The guard has run: every admin view has a signed-in owner or marketer.
    assert signed_in is not None
    return signed_in


@contextlib.contextmanager
def tx() -> Iterator[Session]:
    """A transaction scoped to the signed-in user's merchant (every query is filtered)."""
    with runtime().transaction(user().merchant_id) as session:
        yield session


def merchant_tz(session: Session) -> ZoneInfo:
    merchant = session.get(Merchant, user().merchant_id)
    try:
        return ZoneInfo(merchant.timezone if merchant else "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def field_errors(errors: list[dict[str, str]]) -> dict[str, list[str]]:
    """Errors grouped by field, for showing each one next to its input."""
    grouped: dict[str, list[str]] = {}
    for err in errors:
        grouped.setdefault(err["field"], []).append(err["message"])
    return grouped


def _safe_next(target: str | None) -> str:
    return auth.safe_next(target, "/admin", url_for("admin.dashboard"))


# --- sign-in ------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    email = (request.form.get("email") or "").strip()
    if request.method == "POST":
        signed_in, error = auth.sign_in_from_form(
            auth.ADMIN_ROLES, "This account is for the till only; ask an owner for admin access."
        )
        if signed_in is not None:
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", error=error, email=email)


@bp.post("/logout")
def logout() -> Any:
    auth.logout_user()
    flash("Signed out.", "ok")
    return redirect(url_for("admin.login"))


# --- dashboard ----------------------------------------------------------------------------


@bp.get("/")
def dashboard() -> Any:
    # plotly is imported here, not at start-up: only the dashboard draws charts.
    from walletpass.admin import charts

    days = request.args.get("days", type=int) or 30
    if days not in kpis.PERIODS:
        days = 30
    with tx() as session:
        tz = merchant_tz(session)
        merchant = session.get(Merchant, user().merchant_id)
        data = kpis.dashboard(session, kpis.Period.ending(utcnow(), days, tz))
    currency = merchant.currency if merchant else ""
    return render_template(
        "admin/dashboard.html",
        data=data,
        days=days,
        periods=kpis.PERIODS,
        currency=currency,
        charts=charts.dashboard_charts(data),
        plotly_src=url_for("admin.plotly_js", v=charts.plotly_version()),
    )


@functools.cache
def _plotly_bundle() -> tuple[bytes, str]:
    from plotly.offline import get_plotlyjs

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
    return response.make_conditional(request)


# Register the other areas' routes on this blueprint.
from walletpass.admin import (  # noqa: E402
    views_members,  # noqa: F401
    views_offers,  # noqa: F401
    views_programs,  # noqa: F401
    views_settings,  # noqa: F401
)
