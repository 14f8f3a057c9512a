"""The `walletpass` command: one click group; each domain adds its commands from a module here."""

from __future__ import annotations

import importlib

import click

from walletpass.config import SettingError, Settings

# Modules that add commands to `main`; each defines `register(main)`.
_COMMAND_MODULES = ("core", "merchants", "certs", "passes", "jobs", "crm", "members", "campaigns")


@click.group()
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


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        # A missing module is an error: skipping it would drop its commands silently.
        importlib.import_module(f"walletpass.cli.{name}").register(main)


_register_all()
