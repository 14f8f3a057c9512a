"""The `walletpass` command: one click group; each command is defined in a module here."""

from __future__ import annotations

import importlib

import click

from walletpass.config import SettingError, Settings

# Each command's module-level click object ("module:attribute") and its one-line help.
# The one place where the CLI imports lazily: a command's module is imported only when
# the command runs or its own --help is shown, the way click documents for lazy
# subcommands. Importing them all at start-up loads the domain (pydantic's rules,
# Flask, the Google client), which `--help` or `merchants list` never use: measured in
# CPU time on 2 busy cores, `walletpass --help` took 2.1 s so against 0.4 s with this
# table, and `merchants list` 2.2 s against 1.2 s. `--help` lists the commands from
# here without importing them, so each text is the first paragraph of the command's
# own help (a test checks it).
COMMANDS: dict[str, tuple[str, str]] = {
    "apikeys": ("core:apikeys", "API keys for tills, CRMs and integrations."),
    "campaigns": ("campaigns:campaigns", "Campaigns: list, launch, results."),
    "certs": ("certs:certs", "Pass signing certificates."),
    "demo": (
        "demo:demo",
        "Create a demo merchant (stamp card, points card, coupon); print URLs and keys.",
    ),
    "doctor": (
        "doctor:doctor",
        "Check certificates, APNs, the public URL and Google; exit 1 on any error.",
    ),
    "export": ("members:export_group", "Bulk exports to CSV."),
    "import": ("members:import_group", "Bulk imports from CSV."),
    "init": (
        "core:init",
        "Create the database (or migrate it) and dev certificates if there are none.",
    ),
    "jobs": ("jobs:jobs", "List pending and failed outbox jobs; retry dead ones."),
    "logs": ("core:logs", "List the latest messages Apple Wallet posted to /apple/v1/log."),
    "merchants": ("merchants:merchants", "Merchants: the businesses this installation serves."),
    "pass": ("passes:pass_group", "Apple Wallet passes."),
    "serve": (
        "serve:serve",
        "Serve the web app with gunicorn (the embedded default runs the outbox worker too).",
    ),
    "users": ("core:users", "Staff, marketer and owner accounts."),
    "webhooks": (
        "crm:webhooks",
        "CRM webhooks: inbound sources, outbound endpoints and their deliveries.",
    ),
    "worker": (
        "worker:worker",
        "Run an outbox worker: pushes, Google updates, webhooks. Run as many as you like.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(f"walletpass.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing, over stand-ins that carry only the help.
        listing = click.Group(
            commands=[click.Command(name, help=text) for name, (_, text) in COMMANDS.items()]
        )
        listing.format_commands(ctx, formatter)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="walletpass", prog_name="walletpass")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Loyalty cards and coupons in Apple Wallet and Google Wallet."""
    # Settings given by the caller (an embedding program, the tests) win over the environment.
    if ctx.obj is None:
        try:
            ctx.obj = Settings.from_env()
        except SettingError as exc:
            raise click.ClickException(str(exc)) from None
