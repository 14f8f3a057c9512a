"""Staff sign-in for /till and /admin: argon2 passwords, lock-out, sessions, CSRF, roles.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure behind HTTPS) holding
the user id and a CSRF token. Every state-changing request to a page blueprint must carry
that token (form field ``csrf_token`` or header ``X-CSRF-Token``); a missing or wrong one
is a 400. Apple's and Google's endpoints and the bearer-token API do not use sessions.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, Request, abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy import func, or_, select, update

from walletpass.db import utcnow
from walletpass.runtime import Runtime
from walletpass.tenancy.models import Role, User
from walletpass.tenancy.users import verify_password
from walletpass.web.context import current_runtime

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
# Verifying against this when the email is unknown keeps the response time the same,
# so the sign-in form does not reveal which emails have accounts.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$1BrjXKt1jpEyBkBorXXu3Q$4kHjqioa7lQF7boBUiybku8ceNiEzxEcujUgSUsSY3w"  # noqa: E501

F = TypeVar("F", bound=Callable[..., Any])


class SignInError(Exception):
    """Shown to the person signing in as is."""


def authenticate(runtime: Runtime, email: str, password: str) -> User:
    """The user with these credentials.

    Each attempt is counted before its password is checked, by one atomic UPDATE committed
    at once: parallel guesses each take one of the :data:`MAX_FAILURES` tries, however
    they interleave (counted after the check, 30 parallel wrong passwords had 25 checked).
    An attempt past the tries is refused unchecked and locks the account; a right password
    within them clears the count.

    :raise SignInError: wrong credentials, or the account is locked after repeated failures.
    """
    now = utcnow()
    with runtime.transaction() as db:
        user = db.scalars(
            select(User)
            .where(func.lower(User.email) == email.strip().lower())
            .execution_options(all_merchants=True)
        ).one_or_none()
        attempt = None
        if user is not None and user.active:
            attempt = db.execute(
                update(User)
                .where(
                    User.id == user.id, or_(User.locked_until.is_(None), User.locked_until <= now)
                )
                .values(failed_logins=User.failed_logins + 1)
                .returning(User.failed_logins)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
    if user is None or not user.active:
        verify_password(password, _DUMMY_HASH)
        raise SignInError("Wrong email or password.")
    if attempt is None or attempt > MAX_FAILURES:
        locked_until = user.locked_until if attempt is None else _lock(runtime, user.id, now)
        minutes = max(1, int(((locked_until or now) - now).total_seconds() // 60) + 1)
        raise SignInError(f"Too many failed attempts. Try again in {minutes} minutes.")
    right = verify_password(password, user.password_hash)
    if not right:
        if attempt == MAX_FAILURES:
            _lock(runtime, user.id, now)
        raise SignInError("Wrong email or password.")
    with runtime.transaction() as db:
        db.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=0, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    return user


def _lock(runtime: Runtime, user_id: int, now: datetime) -> datetime:
    until = now + LOCKOUT
    with runtime.transaction() as db:
        db.execute(
            update(User)
            .where(User.id == user_id)
            .values(locked_until=until, failed_logins=0)
            .execution_options(synchronize_session=False)
        )
    return until


def login_user(user: User) -> None:
    session.clear()
    session["user_id"] = user.id
    session["generation"] = user.session_generation
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True


def logout_user() -> None:
    """Sign out this session and every copy of it: the user's session generation moves
    on, so a cookie copied before (another tab, another device, a stolen one) is refused
    from now on, not when it expires 12 hours later. The user's other devices are signed
    out too, which is what a till's "sign out" is expected to mean."""
    user_id = session.get("user_id")
    session.clear()
    if user_id is None:
        return
    with current_runtime().transaction() as db:
        db.execute(
            update(User)
            .where(User.id == user_id)
            .values(session_generation=User.session_generation + 1)
            .execution_options(synchronize_session=False, all_merchants=True)
        )


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """before_request hook for page blueprints: state changes need the session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="missing or invalid CSRF token; reload the page and try again")


def current_user() -> User | None:
    """The signed-in user (loaded once per request), or None."""
    if "walletpass_user" in g:
        return g.walletpass_user
    user = None
    user_id = session.get("user_id")
    if user_id is not None:
        runtime = current_runtime()
        with runtime.transaction() as db:
            user = db.scalars(
                select(User).where(User.id == user_id).execution_options(all_merchants=True)
            ).one_or_none()
            # A cookie from before a sign-out (its generation is past) is refused.
            if user is not None and (
                not user.active or session.get("generation", 0) != user.session_generation
            ):
                user = None
    g.walletpass_user = user
    return user


def require_role(*roles: str, login_endpoint: str) -> Callable[[F], F]:
    """Only signed-in users with one of ``roles``; others go to sign in or get a 403."""

    def deco(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for(login_endpoint, next=request.full_path))
            if user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return deco


ADMIN_ROLES = (Role.OWNER.value, Role.MARKETER.value)
TILL_ROLES = (Role.OWNER.value, Role.MARKETER.value, Role.STAFF.value)


# Machine endpoints: each request carries its own credential (an API key, a pass's
# authentication token, a signature), never a session cookie.
MACHINE_PATHS = ("/api/", "/apple/", "/google/callbacks", "/webhooks/")


class PageSessions(SecureCookieSessionInterface):
    """Cookie sessions for the pages only. Flask opens one for every request (a signing
    serializer built, the cookies parsed); on a till scan that was about 3% of its Python
    time (cProfile, in-process). On a machine endpoint a session is Flask's null
    session: using one by mistake fails loudly instead of setting a cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(MACHINE_PATHS):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = PageSessions()
    secure = current_public_url_is_https(app)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user


def current_public_url_is_https(app: Flask) -> bool:
    runtime = app.extensions["walletpass"]
    return str(runtime.settings.public_url).startswith("https://")


def sign_in_from_form(roles: tuple[str, ...], refused: str) -> tuple[User | None, str | None]:
    """Handle a posted sign-in form (``email``, ``password``) for a page with ``roles``.

    :return: (the signed-in user, None) or (None, the message to show).
    :param refused: shown when the credentials are right but the role may not sign in here.
    """
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    user: User | None = None
    error: str | None = None
    try:
        user = authenticate(current_runtime(), email, password)
    except SignInError as exc:
        error = str(exc)
    if user is not None and user.role not in roles:
        return None, refused
    if user is not None:
        login_user(user)
    return user, error


def safe_next(target: str | None, prefix: str, fallback: str) -> str:
    """``target`` if it is a path under ``prefix`` on this site, else ``fallback``:
    ``?next=https://evil.example`` on a sign-in page must not become a redirect."""
    if target and target.startswith(prefix) and not urlsplit(target).netloc:
        return target.rstrip("?")
    return fallback
