"""`walletpass demo`: the demo merchant, its passes and keys."""

from __future__ import annotations

import json

import click

from walletpass.cli.common import open_runtime
from walletpass.cli.core import init_instance
from walletpass.config import Settings
from walletpass.demo import create_demo


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def demo(settings: Settings, as_json: bool) -> None:
    """Create a demo merchant (stamp card, points card, coupon); print URLs and keys."""
    settings = init_instance(settings)
    with open_runtime(settings) as runtime:
        info = create_demo(runtime)
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"Demo merchant: {info['merchant']}  ({info['public_url']})")
    click.echo(f"  admin API key: {info['api_key']}")
    click.echo(f"  till API key:  {info['till_api_key']}")
    click.echo(f"  owner login:   {info['owner']['email']} / {info['owner']['password']}")
    for p in info["passes"]:
        click.echo(f"  {p['program']:<12} pass: {p['pkpass_url']}")
    click.echo(
        "(API keys and the password are shown once; run `walletpass demo` again for new ones.)"
    )
