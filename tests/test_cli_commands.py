"""`walletpass --help` lists every command as the command itself describes it, without
loading the command modules (which would slow every start of the CLI)."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from walletpass.cli import COMMANDS, main
from walletpass.config import Settings


def test_help_lists_each_command_with_the_start_of_its_own_help():
    ctx = click.Context(main, terminal_width=80)
    commands = [main.get_command(ctx, name) for name in main.list_commands(ctx)]
    assert all(commands), "a listed command does not load"
    # What click prints from the commands themselves, at the same width.
    expected = click.Group(commands=commands)
    formatter = ctx.make_formatter()
    expected.format_commands(ctx, formatter)

    result = CliRunner().invoke(main, ["--help"], obj=Settings(), terminal_width=80)

    assert result.exit_code == 0, result.output
    assert result.output.endswith(formatter.getvalue())
    for name in ("init", "serve", "worker", "demo", "merchants", "webhooks", "import", "pass"):
        assert f"\n  {name} " in result.output


def test_each_listed_command_has_the_name_it_is_listed_under():
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.name == name
    assert main.get_command(ctx, "no-such-command") is None


def test_help_starts_without_importing_the_commands():
    # In a fresh interpreter: this one has imported the commands already.
    code = (
        "import sys\n"
        "from walletpass.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('walletpass.cli.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
