"""The admin's blueprint, the guard every admin route passes, and the helpers the areas share.

Access is enforced once, in ``before_request``, for every endpoint of this blueprint
(routes added later included), rather than by a decorator each view could forget. Only
the sign-in page and the stylesheet are public. Each area's module (sign-in, dashboard,
members, offers, programs, settings) registers its routes on ``bp`` and imports this
module; this module imports none of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, g, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.admin import labels
from walletpass.tenancy.models import Merchant, User
from walletpass.web import auth
from walletpass.web.context import current_runtime

# A merchant's own row: a model with a ``merchant_id`` column.
Owned = TypeVar("Owned")

bp = Blueprint(
    "admin",
    __name__,
    # The admin package, whose templates/ and static/ sit beside views/.
    root_path=str(Path(__file__).resolve().parent.parent),
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/admin",
)

# ``label(kind, value)`` in the templates: stored values in the page's language.
bp.context_processor(labels.template_context)

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
    _merchant_language()
    return auth.check_csrf()


def _merchant_language() -> None:
    """The admin's pages fall back to the shop's language, after the switcher's choice and
    the browser's (walletpass.web.i18n)."""
    signed_in = user()
    with runtime().transaction(signed_in.merchant_id) as session:
        g.merchant_language = session.scalar(
            select(Merchant.language).where(Merchant.id == signed_in.merchant_id)
        )


# --- helpers shared by the areas ----------------------------------------------------------


# The areas call it by this name.
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


def owned(session: Session, model: type[Owned], ident: int) -> Owned:
    """The signed-in merchant's row of ``model`` with this id, or a 404.

    The session is scoped to the merchant, but get() reads the identity map first:
    checking the owner keeps another merchant's id a 404 either way.
    """
    row = session.get(model, ident)
    if row is None or getattr(row, "merchant_id", None) != user().merchant_id:
        abort(404)
    return row


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
