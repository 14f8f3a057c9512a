"""Staff, marketer and owner accounts; passwords hashed with argon2 through passlib."""

from __future__ import annotations

from passlib.hash import argon2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletpass.tenancy.models import Role, User

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return argon2.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return argon2.verify(password, password_hash)
    except (ValueError, TypeError):
        return False


def create_user(
    session: Session, *, merchant_id: int, email: str, password: str, role: str, name: str = ""
) -> User:
    if role not in {r.value for r in Role}:
        raise ValueError(f"unknown role {role!r}; use one of: {', '.join(r.value for r in Role)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if "@" not in email:
        raise ValueError(f"not an email address: {email!r}")
    taken = session.scalar(
        select(User.id)
        .where(func.lower(User.email) == email.strip().lower())
        .execution_options(all_merchants=True)
    )
    if taken is not None:
        raise ValueError(f"a user with the email {email.strip()!r} already exists")
    user = User(
        merchant_id=merchant_id,
        email=email.strip().lower(),
        name=name,
        password_hash=hash_password(password),
        role=role,
    )
    session.add(user)
    session.flush()
    return user
