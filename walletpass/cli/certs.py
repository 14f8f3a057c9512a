"""`walletpass certs ...`: make a development signing chain, import a real .p12, inspect."""

from __future__ import annotations

import os
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization

from walletpass.certs import merchant as merchant_certs
from walletpass.certs.dev import create_dev_chain
from walletpass.certs.files import write_private
from walletpass.certs.models import MerchantCertificate
from walletpass.certs.p12 import import_p12, read_p12
from walletpass.certs.trust import judge_chain
from walletpass.cli.common import merchant_id_for, open_runtime
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
@click.option(
    "--merchant",
    "slug",
    help="Make the chain this merchant's own certificate (stored in the database; --out "
    "then only receives its ca.pem, to verify the merchant's passes with).",
)
@click.pass_obj
def dev(
    settings: Settings,
    out_dir: Path | None,
    pass_type_id: str | None,
    team_id: str | None,
    force: bool,
    slug: str | None,
) -> None:
    """Create a local development signing chain (not trusted by real iPhones)."""
    if slug is not None:
        _merchant_dev(settings, slug, out_dir, pass_type_id, team_id)
        return
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


def _merchant_dev(
    settings: Settings,
    slug: str,
    out_dir: Path | None,
    pass_type_id: str | None,
    team_id: str | None,
) -> None:
    pass_type_id = pass_type_id or f"{settings.pass_type_id}.{slug}"
    with open_runtime(settings) as runtime:
        try:
            with runtime.transaction() as session:
                merchant_id = merchant_id_for(session, slug)
                row, ca_cert = merchant_certs.install_dev_chain(
                    session,
                    settings,
                    merchant_id,
                    pass_type_id,
                    team_id or settings.team_id,
                    organization=f"{slug} dev",
                )
                _echo_certificate(row)
        except CertificateError as exc:
            raise click.ClickException(str(exc)) from None
    if out_dir is not None:
        ca_path = out_dir / "ca.pem"
        write_private(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
        click.echo(f"wrote {ca_path} (verify the merchant's passes with it)")


def _echo_certificate(row: MerchantCertificate) -> None:
    click.echo(f"subject:      {row.subject}")
    click.echo(f"pass type id: {row.pass_type_id}")
    click.echo(f"team id:      {row.team_id}")
    click.echo(f"valid until:  {row.not_after:%Y-%m-%d %H:%M} UTC")
    click.echo(f"fingerprint:  {row.fingerprint}")


def _password(p12_path: Path, password_env: str | None) -> str:
    if password_env:
        if password_env not in os.environ:
            raise click.ClickException(f"environment variable {password_env} is not set")
        return os.environ[password_env]
    # Never echoed and never passed on a command line (where `ps` would show it).
    return str(
        click.prompt(
            f"Password for {p12_path.name}", hide_input=True, default="", show_default=False
        )
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
@click.option(
    "--merchant",
    "slug",
    help="Import it as this merchant's own certificate (white label): its new passes are "
    "issued with its pass type and signed with it.",
)
@click.pass_obj
def import_(
    settings: Settings,
    p12_path: Path,
    password_env: str | None,
    wwdr: tuple[Path, ...],
    out_dir: Path | None,
    slug: str | None,
) -> None:
    """Import a real Pass Type ID certificate; its key is stored sealed with the secret key."""
    if not settings.secret_key:
        raise click.ClickException(
            "WALLETPASS_SECRET_KEY is not set; it is needed to seal the imported private key"
        )
    password = _password(p12_path, password_env)
    if slug is not None:
        _merchant_import(settings, slug, p12_path, password, list(wwdr))
        return
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


def _merchant_import(
    settings: Settings, slug: str, p12_path: Path, password: str, wwdr: list[Path]
) -> None:
    with open_runtime(settings) as runtime:
        try:
            data = read_p12(p12_path)
            with runtime.transaction() as session:
                merchant_id = merchant_id_for(session, slug)
                row = merchant_certs.import_p12(
                    session,
                    settings,
                    merchant_id,
                    data,
                    password.encode("utf-8") or None,
                    name=p12_path.name,
                    wwdr_candidates=wwdr,
                )
                click.echo(f"imported for {slug}; its new passes are signed with:")
                _echo_certificate(row)
        except CertificateError as exc:
            raise click.ClickException(str(exc)) from None


@certs.command("remove")
@click.option("--merchant", "slug", required=True, help="The merchant's slug.")
@click.pass_obj
def remove(settings: Settings, slug: str) -> None:
    """Sign a merchant's new passes with the installation's certificate again."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        removed = merchant_certs.remove(session, merchant_id_for(session, slug))
    if not removed:
        raise click.ClickException(f"{slug} has no certificate of its own")
    click.echo(
        f"{slug}'s new passes use the installation's certificate; its passes issued under "
        "its own pass type keep it until they are reissued"
    )


@certs.command("show")
@click.option(
    "--certs",
    "certs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Certificates folder (default: WALLETPASS_CERTS_DIR).",
)
@click.option("--merchant", "slug", help="Show the certificate of this merchant's new passes.")
@click.pass_obj
def show(settings: Settings, certs_dir: Path | None, slug: str | None) -> None:
    """Show which certificate signs passes, and until when."""
    if slug is not None:
        with open_runtime(settings) as runtime, runtime.transaction() as session:
            row = merchant_certs.active_certificate(session, merchant_id_for(session, slug))
            if row is not None:
                click.echo(f"{slug} signs its new passes with its own certificate:")
                _echo_certificate(row)
                return
        click.echo(f"{slug} has no certificate of its own; the installation's signs its passes:")
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
