"""Shared set-up for the admin tests (imported by the other test_admin_* modules).

Named test_* so that it sits in the admin tests' own namespace; it holds no tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import factories

from walletpass.tenancy.models import Store, User
from walletpass.tenancy.users import hash_password

PASSWORD = "correct horse battery"


@dataclass
class Shop:
    merchant_id: int
    program_id: int
    emails: dict[str, str]


def make_shop(runtime: Any, kind: str = "points", **program_kw: Any) -> Shop:
    """A merchant with one program, a store, and an owner, a marketer and a staff user."""
    with runtime.transaction() as s:
        merchant = factories.merchant(s, timezone="Europe/Paris", currency="EUR")
        program = factories.program(s, merchant, kind, **program_kw)
        s.add(Store(merchant_id=merchant.id, code="main", name="Main"))
        emails = {}
        for role in ("owner", "marketer", "staff"):
            email = f"{role}{merchant.id}@example.test"
            s.add(User(merchant_id=merchant.id, email=email, password_hash=_hash(), role=role))
            emails[role] = email
        return Shop(merchant.id, program.id, emails)


@functools.cache
def _hash() -> str:
    # argon2 is slow on purpose (about a second here); hash the shared password once.
    return hash_password(PASSWORD)


def csrf(client: Any) -> str:
    """The session's CSRF token (creating the session with one if needed)."""
    with client.session_transaction() as session:
        if "csrf" not in session:
            session["csrf"] = "test-csrf-token-0123456789"
        return str(session["csrf"])


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    client.get("/admin/login")
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
    )


def post(client: Any, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """POST with the session's CSRF token."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf(client)}, **kw)
