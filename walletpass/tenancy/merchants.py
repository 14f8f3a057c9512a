"""Creating a merchant, whoever does it (the CLI's ``merchants create``, the demo).
Flask-free; the caller's transaction commits."""

from __future__ import annotations

import re
import zoneinfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletpass import errors
from walletpass.i18n.languages import languages
from walletpass.tenancy.models import Merchant

# The slug is in URLs and printed join links, so it is kept short and plain.
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
# The languages the service writes in (a folder of catalogues each, walletpass/i18n).
LANGUAGES = languages()


def create_merchant(
    session: Session,
    *,
    slug: str,
    name: str,
    timezone: str,
    currency: str,
    language: str = "en",
) -> Merchant:
    """A new merchant, with every value checked before anything is written.

    :raise errors.ValidationFailed: naming each bad field.
    :raise errors.Conflict: the slug is taken.
    """
    problems: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    if not SLUG.match(slug):
        bad("slug", "2-64 lowercase letters, digits and hyphens, starting with a letter or digit")
    name = name.strip()
    if not name or len(name) > 200:
        bad("name", "1-200 characters")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        bad("timezone", f"{timezone!r} is not an IANA time zone such as Europe/Athens")
    if not CURRENCY.match(currency.upper()):
        bad("currency", f"{currency!r} is not an ISO 4217 code such as EUR or TWD")
    if language not in LANGUAGES:
        bad("language", f"{language!r} is not one of {', '.join(LANGUAGES)}")
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise errors.ValidationFailed(detail, errors=problems)
    taken = errors.Conflict(f"a merchant {slug!r} already exists")
    if session.scalar(select(func.count()).where(Merchant.slug == slug)):
        raise taken
    merchant = Merchant(
        slug=slug, name=name, timezone=timezone, currency=currency.upper(), language=language
    )
    try:
        # A savepoint: a concurrent create of the same slug fails here, not at commit.
        with session.begin_nested():
            session.add(merchant)
    except IntegrityError:
        raise taken from None
    return merchant
