"""`walletpass webhooks`: inbound CRM sources, outbound endpoints, the delivery log."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

import click
from sqlalchemy import select

from walletpass import errors
from walletpass.cli.common import merchant_id_for, open_runtime
from walletpass.config import Settings
from walletpass.crm import outbound
from walletpass.crm.inbound import create_source, rotate_source
from walletpass.crm.models import InboundSource, WebhookEndpoint
from walletpass.loyalty.models import Program

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _domain_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Show domain refusals (bad URL, name taken...) as CLI errors, not tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except errors.WalletpassError as exc:
            raise click.ClickException(exc.detail) from None

    return wrapper


@click.group()
def webhooks() -> None:
    """CRM webhooks: inbound sources, outbound endpoints and their deliveries."""


# --- inbound sources ------------------------------------------------------------------


@webhooks.group()
def sources() -> None:
    """CRMs that post signed events to /webhooks/crm/<name>."""


@sources.command("create")
@click.option("--merchant", "merchant_slug", required=True)
@click.option("--name", required=True, help="The <source> part of the URL (global).")
@click.option(
    "--program", "program_slug", default=None, help="Where member.upsert enrolls by default."
)
@click.pass_obj
@_domain_errors
def sources_create(
    settings: Settings, merchant_slug: str, name: str, program_slug: str | None
) -> None:
    """Register a CRM source and print its URL and secret (the secret is shown once)."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        merchant_id = merchant_id_for(session, merchant_slug)
        program_id = None
        if program_slug:
            program = session.scalars(
                select(Program).where(Program.slug == program_slug)
            ).one_or_none()
            if program is None:
                raise click.ClickException(
                    f"merchant {merchant_slug!r} has no program {program_slug!r}"
                )
            program_id = program.id
        source, secret = create_source(
            session, settings, merchant_id=merchant_id, name=name, program_id=program_id
        )
        url = f"{settings.public_url.rstrip('/')}/webhooks/crm/{source.name}"
    click.echo(f"url:    {url}")
    click.echo(f"secret: {secret}")
    click.echo("(the secret is shown once; `walletpass webhooks sources rotate` makes a new one)")


@sources.command("rotate")
@click.option("--name", required=True)
@click.option(
    "--grace-hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How long the old secret keeps working (0: revoke it now).",
)
@click.pass_obj
def sources_rotate(settings: Settings, name: str, grace_hours: float) -> None:
    """Give a source a new secret; the old one stays valid for the grace period."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        source = session.scalars(
            select(InboundSource).where(InboundSource.name == name)
        ).one_or_none()
        if source is None:
            raise click.ClickException(f"no source {name!r}")
        secret = rotate_source(session, settings, source, grace=timedelta(hours=grace_hours))
        until = source.previous_expires_at
    click.echo(f"secret: {secret}")
    if until is not None:
        click.echo(f"the previous secret works until {until:%Y-%m-%d %H:%M} UTC")
    else:
        click.echo("the previous secret no longer works")


@sources.command("list")
@click.option("--merchant", "merchant_slug", default=None)
@click.pass_obj
def sources_list(settings: Settings, merchant_slug: str | None) -> None:
    """List inbound sources (never their secrets)."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        if merchant_slug:
            merchant_id_for(session, merchant_slug)
        rows = session.scalars(select(InboundSource).order_by(InboundSource.id)).all()
        for row in rows:
            rotating = (
                f" previous secret until {row.previous_expires_at:%Y-%m-%d %H:%M}"
                if row.previous_expires_at
                else ""
            )
            click.echo(
                f"{row.id:>6} {row.name:<24} merchant={row.merchant_id} "
                f"{'active' if row.active else 'disabled'}{rotating}"
            )
        if not rows:
            click.echo("no sources")


# --- outbound endpoints ---------------------------------------------------------------


@webhooks.group()
def endpoints() -> None:
    """URLs that receive signed events."""


@endpoints.command("create")
@click.option("--merchant", "merchant_slug", required=True)
@click.option("--url", required=True)
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    help="An event type to subscribe to (repeat), or '*' for all.",
)
@click.pass_obj
@_domain_errors
def endpoints_create(
    settings: Settings, merchant_slug: str, url: str, events: tuple[str, ...]
) -> None:
    """Register an endpoint and print its signing secret (shown once)."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        merchant_id = merchant_id_for(session, merchant_slug)
        endpoint, secret = outbound.create_endpoint(
            session, settings, merchant_id=merchant_id, url=url, events=list(events)
        )
        endpoint_id = endpoint.id
    click.echo(f"endpoint: {endpoint_id}")
    click.echo(f"secret:   {secret}")


@endpoints.command("list")
@click.option("--merchant", "merchant_slug", default=None)
@click.pass_obj
def endpoints_list(settings: Settings, merchant_slug: str | None) -> None:
    """List endpoints and what they subscribe to."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        if merchant_slug:
            merchant_id_for(session, merchant_slug)
        rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        for row in rows:
            click.echo(
                f"{row.id:>6} {'active' if row.active else 'disabled':<8} {row.url} "
                f"[{', '.join(row.events)}]"
            )
        if not rows:
            click.echo("no endpoints")


# --- the delivery log -----------------------------------------------------------------


@webhooks.command()
@click.option("--endpoint", "endpoint_id", required=True, type=int)
@click.option("--status", type=click.Choice(["pending", "delivered", "dead"]), default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def deliveries(
    settings: Settings, endpoint_id: int, status: str | None, limit: int, as_json: bool
) -> None:
    """An endpoint's delivery log, newest first: attempts, last status, last error."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        rows = outbound.list_deliveries(session, endpoint_id, status=status, limit=limit)
        for row in rows:
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "id": row.id,
                            "event_id": row.event_id,
                            "event_type": row.event_type,
                            "status": row.status,
                            "attempts": row.attempts,
                            "last_status_code": row.last_status_code,
                            "last_error": row.last_error,
                            "created_at": row.created_at.isoformat(),
                            "delivered_at": row.delivered_at.isoformat()
                            if row.delivered_at
                            else None,
                        }
                    )
                )
                continue
            code = row.last_status_code if row.last_status_code is not None else "-"
            error = f"  {row.last_error}" if row.last_error else ""
            click.echo(
                f"{row.id:>8} {row.created_at:%Y-%m-%d %H:%M:%S} {row.event_type:<18} "
                f"{row.status:<9} attempts={row.attempts} last={code}{error}"
            )
        if not rows and not as_json:
            click.echo("no deliveries")


@webhooks.command()
@click.argument("delivery_id", type=int)
@click.pass_obj
@_domain_errors
def redeliver(settings: Settings, delivery_id: int) -> None:
    """Queue a delivery again: same event id and payload, signed afresh."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        delivery = outbound.redeliver(session, delivery_id)
        event = f"{delivery.event_type} {delivery.event_id}"
    click.echo(f"delivery {delivery_id} ({event}) queued again")
