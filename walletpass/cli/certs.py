"""`walletpass certs ...`: make a development signing chain, import a real .p12, inspect."""

from __future__ import annotations

import os
from pathlib import Path

import click

from walletpass.certs.dev import create_dev_chain
from walletpass.certs.p12 import import_p12
from walletpass.certs.trust import judge_chain
from walletpass.config import Settings
from walletpass.passes.signing import CertificateError, SigningIdentity


@click.group()
def certs() -> None:
    """Pass signing certificates."""


@certs.command("dev")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write ca.pem, pass.pem and pass.key (default: WALLETPASS_CERTS_DIR).",
)
@click.option("--pass-type-id", help="Pass type identifier (default: WALLETPASS_PASS_TYPE_ID).")
@click.option("--team-id", help="Team identifier (default: WALLETPASS_TEAM_ID).")
@click.option("--force", is_flag=True, help="Replace existing certificates in the folder.")
@click.pass_obj
def dev(
    settings: Settings,
    out_dir: Path | None,
    pass_type_id: str | None,
    team_id: str | None,
    force: bool,
) -> None:
    """Create a local development signing chain (not trusted by real iPhones)."""
    out_dir = out_dir or settings.resolved_certs_dir
    try:
        chain = create_dev_chain(
            out_dir,
            pass_type_id or settings.pass_type_id,
            team_id or settings.team_id,
            organization=f"{settings.organization_name} dev",
            force=force,
        )
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {chain.ca_path}, {chain.cert_path} and {chain.key_path}")
    click.echo(
        f"pass type {chain.pass_type_id}, team {chain.team_id}, "
        f"valid until {chain.not_after:%Y-%m-%d}"
    )


@certs.command("import")
@click.option(
    "--p12",
    "p12_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Pass Type ID certificate with its private key, as exported from Keychain.",
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="Read the .p12 password from this environment variable instead of prompting.",
)
@click.option(
    "--wwdr",
    "wwdr",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Apple WWDR intermediate (PEM or DER, file or folder); repeatable.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write pass.pem, wwdr.pem, pass.key.sealed (default: WALLETPASS_CERTS_DIR).",
)
@click.pass_obj
def import_(
    settings: Settings,
    p12_path: Path,
    password_env: str | None,
    wwdr: tuple[Path, ...],
    out_dir: Path | None,
) -> None:
    """Import a real Pass Type ID certificate; its key is stored sealed with the secret key."""
    if not settings.secret_key:
        raise click.ClickException(
            "WALLETPASS_SECRET_KEY is not set; it is needed to seal the imported private key"
        )
    if password_env:
        if password_env not in os.environ:
            raise click.ClickException(f"environment variable {password_env} is not set")
        password = os.environ[password_env]
    else:
        # Never echoed and never passed on a command line (where `ps` would show it).
        password = click.prompt(
            f"Password for {p12_path.name}", hide_input=True, default="", show_default=False
        )
    out_dir = out_dir or settings.resolved_certs_dir
    try:
        imported = import_p12(
            p12_path,
            password.encode("utf-8") or None,
            out_dir,
            settings.secret_key,
            wwdr_candidates=list(wwdr),
            expected_pass_type_id=settings.pass_type_id,
            expected_team_id=settings.team_id,
        )
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"imported {imported.pass_type_id} (team {imported.team_id}), valid until "
        f"{imported.not_after:%Y-%m-%d}, issued by {imported.issuer}"
    )
    click.echo(f"wrote {imported.cert_path}, {imported.wwdr_path}, {imported.sealed_key_path}")


@certs.command("show")
@click.option(
    "--certs",
    "certs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Certificates folder (default: WALLETPASS_CERTS_DIR).",
)
@click.pass_obj
def show(settings: Settings, certs_dir: Path | None) -> None:
    """Show which certificate signs passes, and until when."""
    certs_dir = certs_dir or settings.resolved_certs_dir
    try:
        identity = SigningIdentity.from_dir(certs_dir, settings.secret_key or None)
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"folder:       {certs_dir}")
    click.echo(f"pass type id: {identity.pass_type_id}")
    click.echo(f"team id:      {identity.team_id}")
    click.echo(f"valid until:  {identity.not_after:%Y-%m-%d %H:%M} UTC")
    click.echo(f"issuer:       {identity.cert.issuer.rfc4514_string()}")
    click.echo(f"chain:        {judge_chain(identity.intermediate).text}")
    for label, configured, actual in (
        ("WALLETPASS_PASS_TYPE_ID", settings.pass_type_id, identity.pass_type_id),
        ("WALLETPASS_TEAM_ID", settings.team_id, identity.team_id),
    ):
        if configured != actual:
            click.echo(f"warning: {label} is {configured!r}, the certificate says {actual!r}")
