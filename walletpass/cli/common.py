"""Helpers shared by the CLI modules."""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.orm import Session


def merchant_id_for(session: Session, slug: str) -> int:
    """The merchant's id; the rest of the transaction is scoped to it, like a request.

    :raise click.ClickException: no merchant with this slug.
    """
    from walletpass.tenancy.models import Merchant

    merchant = session.scalars(select(Merchant).where(Merchant.slug == slug)).one_or_none()
    if merchant is None:
        raise click.ClickException(f"no merchant {slug!r}")
    session.info["merchant_id"] = merchant.id
    return merchant.id
