"""`walletpass import members` and `walletpass export members|ledger`: CSV in and out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO

import click

from walletpass.cli.common import open_runtime
from walletpass.config import Settings
from walletpass.crm import bulk


def _as_utc(value: datetime | None) -> datetime | None:
    # click.DateTime gives naive values; the dates a user types are meant as UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@click.group("import")
def import_group() -> None:
    """Bulk imports from CSV."""


@import_group.command("members")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--program", "program_slug", required=True, help="Program slug.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--report",
    "report_file",
    type=click.File("w", encoding="utf-8"),
    default=None,
    help="Write the rejected rows (line, reason, cells) to this CSV file.",
)
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10000))
@click.pass_obj
def import_members(
    settings: Settings,
    file: str,
    program_slug: str,
    dry_run: bool,
    report_file: IO[str] | None,
    batch_size: int,
) -> None:
    """Create or update members from a CSV file.

    Columns: external_id and/or email (the keys), name, phone, birthday (YYYY-MM-DD),
    language, marketing_consent (true/false, yes/no), tags (JSON object or
    "vip;segment=x"), points_balance (the starting balance of members the import
    creates). A file written by `walletpass export members` or the admin's download
    imports as it is (its other columns are ignored); the admin's upload reads the
    same columns.
    """
    # utf-8-sig: spreadsheets often save CSV with a byte-order mark.
    with open(file, encoding="utf-8-sig", newline="") as stream:
        try:
            rows = bulk.read_rows(stream)
        except bulk.BulkError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        with open_runtime(settings) as runtime:
            label = "checking" if dry_run else "importing"
            with click.progressbar(length=len(rows), label=f"{label} {len(rows)} rows") as bar:
                report = bulk.import_members(
                    runtime,
                    program_slug,
                    rows,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    progress=bar.update,
                )
    except bulk.BulkError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        click.echo("dry run: nothing was written")
    click.echo(report.summary())
    for rejected in report.rejected[:20]:
        click.echo(f"  line {rejected.line}: {rejected.reason}")
    if len(report.rejected) > 20:
        click.echo(f"  ... and {len(report.rejected) - 20} more (see --report)")
    if report_file is not None:
        bulk.write_rejected(report, report_file)
        click.echo(f"rejected rows written to {report_file.name}")


@click.group("export")
def export_group() -> None:
    """Bulk exports to CSV."""


@export_group.command("members")
@click.option("--program", "program_slug", required=True, help="Program slug.")
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    show_default=True,
)
@click.pass_obj
def export_members(settings: Settings, program_slug: str, output: IO[str]) -> None:
    """Write a program's members as CSV (re-importable with `walletpass import members`)."""
    try:
        with open_runtime(settings) as runtime:
            count = bulk.export_members(runtime, program_slug, output)
    except bulk.BulkError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{count} members exported", err=True)


@export_group.command("ledger")
@click.option("--program", "program_slug", required=True, help="Program slug.")
@click.option("--since", type=click.DateTime(), default=None, help="From this time (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Before this time (UTC).")
@click.option(
    "-o",
    "--output",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    show_default=True,
)
@click.pass_obj
def export_ledger(
    settings: Settings,
    program_slug: str,
    since: datetime | None,
    until: datetime | None,
    output: IO[str],
) -> None:
    """Write a program's ledger entries as CSV, oldest first."""
    try:
        with open_runtime(settings) as runtime:
            count = bulk.export_ledger(
                runtime, program_slug, output, since=_as_utc(since), until=_as_utc(until)
            )
    except bulk.BulkError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{count} ledger entries exported", err=True)
