"""`walletpass doctor`: every health check, with what is wrong and what to do."""

from __future__ import annotations

import json

import click

from walletpass.cli.common import open_runtime
from walletpass.config import Settings
from walletpass.health.doctor import run_checks
from walletpass.health.findings import Status, worst

_MARKS = {Status.OK: "ok", Status.WARNING: "WARNING", Status.ERROR: "ERROR"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--offline",
    is_flag=True,
    help="Check files and settings only: no dry push to APNs, no call to the public URL or Google.",
)
@click.pass_obj
def doctor(settings: Settings, as_json: bool, offline: bool) -> None:
    """Check certificates, APNs, the public URL and Google; exit 1 on any error.

    Warnings (a certificate expiring within 30 days, a development chain on an HTTPS
    installation) are printed but exit 0.
    """
    with open_runtime(settings) as runtime:
        found = run_checks(runtime, network=not offline)
    overall = worst(found)
    if as_json:
        click.echo(
            json.dumps({"status": str(overall), "checks": [f.as_json() for f in found]}, indent=2)
        )
    else:
        for f in found:
            where = f" [{f.subject}]" if f.subject else ""
            click.echo(f"{_MARKS[f.status]:<8} {f.title}{where}: {f.text()}")
        errors = sum(1 for f in found if f.status is Status.ERROR)
        warnings = sum(1 for f in found if f.status is Status.WARNING)
        click.echo(f"\n{len(found)} checks: {errors} errors, {warnings} warnings")
    if overall is Status.ERROR:
        raise SystemExit(1)
