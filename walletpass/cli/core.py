"""init, logs, apikeys, users; and init_instance, which serve and demo run first."""

from __future__ import annotations

import os
import secrets

import click
from sqlalchemy import select

from walletpass.apple.models import AppleLog
from walletpass.certs.dev import create_dev_chain
from walletpass.cli.common import merchant_id_for, open_runtime
from walletpass.config import Settings
from walletpass.migrate import upgrade
from walletpass.tenancy.apikeys import create_api_key
from walletpass.tenancy.models import Store
from walletpass.tenancy.users import create_user


def init_instance(settings: Settings) -> Settings:
    """Create what the embedded default needs: home dir, secret key, database, dev certs."""
    settings.home.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        key_file = settings.home / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        settings = settings.override(secret_key=key_file.read_text().strip())
    with open_runtime(settings, schema=False) as runtime:
        upgrade(runtime.engine)
    certs = settings.resolved_certs_dir
    if not (certs / "pass.pem").exists():
        # Messages to stderr: ``demo --json`` prints only JSON on stdout.
        if settings.public_url.startswith("https://"):
            # A public installation: a dev chain would sign passes no iPhone opens, and
            # hide that the real certificate is missing.
            click.echo(
                f"warning: no signing certificate in {certs}, so passes cannot be signed; "
                "import your Pass Type ID certificate with "
                "`walletpass certs import --p12 PassTypeID.p12` "
                "(or make a development chain with `walletpass certs dev`)",
                err=True,
            )
        else:
            create_dev_chain(certs, settings.pass_type_id, settings.team_id)
            click.echo(
                f"dev signing certificates written to {certs} (not trusted by real iPhones)",
                err=True,
            )
    return settings


@click.command()
@click.pass_obj
def init(settings: Settings) -> None:
    """Create the database (or migrate it) and dev certificates if there are none."""
    settings = init_instance(settings)
    click.echo(f"database ready: {_redact(settings.resolved_database_url)}")


@click.command()
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def logs(settings: Settings, limit: int) -> None:
    """List the latest messages Apple Wallet posted to /apple/v1/log."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        rows = session.scalars(select(AppleLog).order_by(AppleLog.id.desc()).limit(limit)).all()
        for row in rows:
            click.echo(f"{row.created_at:%Y-%m-%d %H:%M:%S} {row.serial or '-'} {row.message}")
        if not rows:
            click.echo("no logs")


@click.group()
def apikeys() -> None:
    """API keys for tills, CRMs and integrations."""


@apikeys.command("create")
@click.option("--merchant", "merchant_slug", required=True)
@click.option("--scope", required=True, type=click.Choice(["till", "crm", "admin", "read"]))
@click.option("--store", "store_code", default=None, help="Store code (till keys).")
@click.option("--name", default="")
@click.pass_obj
def apikeys_create(
    settings: Settings, merchant_slug: str, scope: str, store_code: str | None, name: str
) -> None:
    """Create an API key and print it once."""
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        merchant_id = merchant_id_for(session, merchant_slug)
        store_id = None
        if store_code:
            store = session.scalars(select(Store).where(Store.code == store_code)).one_or_none()
            if store is None:
                raise click.ClickException(
                    f"merchant {merchant_slug!r} has no store {store_code!r}"
                )
            store_id = store.id
        _, key = create_api_key(
            session, merchant_id=merchant_id, scope=scope, name=name, store_id=store_id
        )
    click.echo(key)


@click.group()
def users() -> None:
    """Staff, marketer and owner accounts."""


@users.command("create")
@click.option("--merchant", "merchant_slug", required=True)
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "marketer", "staff"]))
@click.option("--name", default="")
@click.option(
    "--password-env",
    default=None,
    help="Read the password from this environment variable instead of prompting.",
)
@click.pass_obj
def users_create(
    settings: Settings,
    merchant_slug: str,
    email: str,
    role: str,
    name: str,
    password_env: str | None,
) -> None:
    """Create a user who signs in to /admin or /till."""
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise click.ClickException(f"${password_env} is empty")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_runtime(settings) as runtime, runtime.transaction() as session:
        merchant_id = merchant_id_for(session, merchant_slug)
        try:
            create_user(
                session,
                merchant_id=merchant_id,
                email=email,
                password=password,
                role=role,
                name=name,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"user {email} ({role}) created")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
