"""Signing in and out of the admin (owners and marketers; staff use the till)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from walletpass.admin.views.common import bp
from walletpass.web import auth, ratelimit


def _safe_next(target: str | None) -> str:
    return auth.safe_next(target, "/admin", url_for("admin.dashboard"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    email = (request.form.get("email") or "").strip()
    if request.method == "POST":
        # Counted per address before the password is checked, whichever account it names;
        # an account's own lock-out after repeated failures (auth.authenticate) stays.
        wait = ratelimit.hit(ratelimit.ADMIN_SIGN_IN)
        if wait is not None:
            error = _(
                "Too many sign-in attempts from this network. Try again in %(seconds)s seconds.",
                seconds=wait,
            )
            page = render_template("admin/login.html", error=error, email=email)
            return page, 429, {"Retry-After": str(wait)}
        signed_in, error = auth.sign_in_from_form(
            auth.ADMIN_ROLES, _("This account is for the till only; ask an owner for admin access.")
        )
        if signed_in is not None:
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", error=error, email=email)


@bp.post("/logout")
def logout() -> Any:
    auth.logout_user()
    flash(_("Signed out."), "ok")
    return redirect(url_for("admin.login"))
