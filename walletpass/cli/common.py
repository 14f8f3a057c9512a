"""Helpers shared by the CLI modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.config import Settings
from walletpass.runtime import Runtime
from walletpass.startup import NotReady, check_connection, require_ready
from walletpass.tenancy.models import Merchant


@contextlib.contextmanager
def open_runtime(settings: Settings, *, schema: bool = True) -> Iterator[Runtime]:
    """The runtime of one command, closed after it.

    The database is checked first, so an unreachable server or a schema older than the
    code stops the command with one line naming what to fix, before anything is written.

    :param schema: also require the schema to be the code's (not for ``init``, which
        migrates it).
    :raise click.ClickException: the database cannot be used.
    """
    runtime = Runtime.create(settings)
    try:
        try:
            if schema:
                require_ready(runtime.engine)
            else:
                check_connection(runtime.engine)
        except NotReady as exc:
            raise click.ClickException(str(exc)) from None
        yield runtime
    finally:
        runtime.close()


def merchant_id_for(session: Session, slug: str) -> int:
    """The merchant's id; the rest of the transaction is scoped to it, like a request.

    :raise click.ClickException: no merchant with this slug.
    """
    merchant = session.scalars(select(Merchant).where(Merchant.slug == slug)).one_or_none()
    if merchant is None:
        raise click.ClickException(f"no merchant {slug!r}")
    session.info["merchant_id"] = merchant.id
    return merchant.id
