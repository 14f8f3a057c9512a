"""`walletpass merchants create|list`: the first merchant of an installation, and the rest."""

from __future__ import annotations

import json

import click
from sqlalchemy import func, select

from walletpass import errors
from walletpass.cli.common import open_runtime
from walletpass.config import Settings
from walletpass.loyalty.models import Member
from walletpass.passes.models import Pass
from walletpass.tenancy.merchants import LANGUAGES, create_merchant
from walletpass.tenancy.models import Merchant


@click.group()
def merchants() -> None:
    """Merchants: the businesses this installation serves."""


@merchants.command("create")
@click.option("--slug", required=True, help="Short name used in URLs and commands (cafe-lima).")
@click.option("--name", required=True, help="The business's name, shown on passes.")
@click.option("--timezone", required=True, help="IANA time zone, e.g. Europe/Athens.")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. EUR or TWD.")
@click.option("--language", default="en", show_default=True, help=f"One of {', '.join(LANGUAGES)}.")
@click.pass_obj
def create(
    settings: Settings, slug: str, name: str, timezone: str, currency: str, language: str
) -> None:
    """Create a merchant; then add an owner (`users create`) and keys (`apikeys create`)."""
    with open_runtime(settings) as runtime:
        try:
            with runtime.transaction() as session:
                merchant = create_merchant(
                    session,
                    slug=slug,
                    name=name,
                    timezone=timezone,
                    currency=currency,
                    language=language,
                )
        except errors.WalletpassError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(
        f"merchant {merchant.slug} created ({merchant.name}, {merchant.timezone}, "
        f"{merchant.currency}, {merchant.language})"
    )
    click.echo(
        f"next: walletpass users create --merchant {merchant.slug} --email you@example.com "
        "--role owner"
    )


@merchants.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per merchant.")
@click.pass_obj
def list_(settings: Settings, as_json: bool) -> None:
    """List the merchants with their members and passes."""
    members = select(func.count(Member.id)).where(Member.merchant_id == Merchant.id)
    passes = select(func.count(Pass.id)).where(Pass.merchant_id == Merchant.id)
    with open_runtime(settings) as runtime, runtime.transaction(readonly=True) as session:
        rows = session.execute(
            select(
                Merchant,
                members.scalar_subquery().label("members"),
                passes.scalar_subquery().label("passes"),
            ).order_by(Merchant.slug)
        ).all()
    for merchant, member_count, pass_count in rows:
        values = {
            "slug": merchant.slug,
            "name": merchant.name,
            "timezone": merchant.timezone,
            "currency": merchant.currency,
            "language": merchant.language,
            "members": member_count,
            "passes": pass_count,
            "created_at": merchant.created_at.isoformat(),
        }
        if as_json:
            click.echo(json.dumps(values, ensure_ascii=False))
        else:
            click.echo(
                f"{merchant.slug:<20} {merchant.currency} {merchant.timezone:<20} "
                f"{member_count:>7} members {pass_count:>7} passes  {merchant.name}"
            )
    if not rows and not as_json:
        click.echo("no merchants; create one with `walletpass merchants create`")
