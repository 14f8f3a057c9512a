"""`walletpass campaigns`: list campaigns, launch one, print its results."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from walletpass import errors
from walletpass.campaigns import services
from walletpass.campaigns.models import Campaign
from walletpass.campaigns.results import campaign_results
from walletpass.cli.common import open_runtime
from walletpass.config import Settings


@click.group()
def campaigns() -> None:
    """Campaigns: list, launch, results."""


@campaigns.command("list")
@click.option("--merchant", "merchant_id", type=int, default=None, help="Only this merchant.")
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def list_(settings: Settings, merchant_id: int | None, limit: int) -> None:
    """List campaigns, newest first, with their status and counts."""
    with open_runtime(settings) as runtime, runtime.transaction(merchant_id) as session:
        rows = session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)).all()
        if not rows:
            click.echo("no campaigns")
        for c in rows:
            click.echo(
                f"{c.id:>6} {c.status:<9} merchant={c.merchant_id} sent={c.sent}/{c.total}"
                f" holdout={c.holdout_count} {c.name}"
            )


@campaigns.command()
@click.argument("campaign_id", type=int)
@click.pass_obj
def launch(settings: Settings, campaign_id: int) -> None:
    """Launch a campaign now: choose its recipients and queue the fan-out (the worker
    sends it)."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise click.ClickException(f"no campaign {campaign_id}")
        try:
            count = services.launch(session, settings, campaign)
        except errors.WalletpassError as exc:
            raise click.ClickException(exc.detail) from exc
        click.echo(
            f"campaign {campaign_id}: {count} recipients ({campaign.total} to send,"
            f" {campaign.holdout_count} held out, {campaign.excluded_no_consent}"
            " excluded: no consent); run `walletpass worker` to send"
        )


@campaigns.command()
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def results(settings: Settings, campaign_id: int, as_json: bool) -> None:
    """Print a campaign's results: sent, delivered, redeemed, uplift, fatigue."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        try:
            res = campaign_results(session, campaign_id)
        except errors.NotFound as exc:
            raise click.ClickException(exc.detail) from exc
    if as_json:
        click.echo(json.dumps(res, indent=2, default=str))
        return

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    click.echo(f"{res['name']} ({res['status']})")
    click.echo(
        f"  recipients {res['recipients']}: treated {res['treated']},"
        f" holdout {res['holdout']} ({pct(res['holdout_share_actual'])})"
    )
    click.echo(
        f"  excluded: no consent {res['excluded_no_consent']},"
        f" skipped for the budget {res['skipped_budget']}"
    )
    click.echo(f"  sent {res['sent']}")
    click.echo(f"  delivered {res['delivered']} ({pct(res['delivery_rate'])})")
    click.echo(f"  redeemed {res['redeemed']} ({pct(res['redemption_rate'])})")
    up = res.get("uplift")
    if up and up.get("scans_per_member_diff") is not None:
        click.echo(
            f"  till scans/member in {up['days']} days: {up['treated']['scans_per_member']}"
            f" vs holdout {up['holdout']['scans_per_member']}"
            f" (uplift {up['scans_per_member_diff']:+})"
        )
    fatigue = res["fatigue"]
    click.echo(f"  removed within 48 h {fatigue['removed_48h']} ({pct(fatigue['rate'])})")
