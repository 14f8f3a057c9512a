"""init, serve, worker, demo, logs, apikeys, users."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import threading

import click
from sqlalchemy import select

from walletpass.cli.common import merchant_id_for, open_runtime
from walletpass.config import Settings

_DEFAULT_PUBLIC_URL = Settings.__dataclass_fields__["public_url"].default


def init_instance(settings: Settings) -> Settings:
    """Create what the embedded default needs: home dir, secret key, database, dev certs."""
    settings.home.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        key_file = settings.home / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        settings = settings.override(secret_key=key_file.read_text().strip())
    from walletpass.migrate import upgrade

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
            from walletpass.certs.dev import create_dev_chain

            create_dev_chain(certs, settings.pass_type_id, settings.team_id)
            click.echo(
                f"dev signing certificates written to {certs} (not trusted by real iPhones)",
                err=True,
            )
    return settings


def register(main: click.Group) -> None:
    @main.command()
    @click.pass_obj
    def init(settings: Settings) -> None:
        """Create the database (or migrate it) and dev certificates if there are none."""
        settings = init_instance(settings)
        click.echo(f"database ready: {_redact(settings.resolved_database_url)}")

    @main.command()
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True, type=int)
    @click.option(
        "--workers",
        default=1,
        show_default=True,
        type=int,
        help="gunicorn worker processes (the embedded outbox worker runs in each).",
    )
    @click.option("--threads", default=8, show_default=True, type=int)
    @click.pass_obj
    def serve(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
        """Serve the web app with gunicorn (the embedded default runs the outbox worker too)."""
        if settings.public_url == _DEFAULT_PUBLIC_URL and not os.environ.get(
            "WALLETPASS_PUBLIC_URL"
        ):
            # Unconfigured: passes and links point at where this server listens.
            local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
            settings = settings.override(public_url=f"http://{local}:{port}")
        settings = init_instance(settings)
        from gunicorn.app.base import BaseApplication

        from walletpass.app import create_app

        def listening(_arbiter: object) -> None:
            # gunicorn's when_ready: the socket is bound, so the address printed works.
            click.echo(
                f"walletpass listening on http://{host}:{port} (public URL {settings.public_url})"
            )

        class _Server(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                self.cfg.set("bind", f"{host}:{port}")
                self.cfg.set("workers", workers)
                self.cfg.set("threads", threads)
                self.cfg.set("accesslog", "-")
                self.cfg.set("when_ready", listening)

            def load(self):  # type: ignore[no-untyped-def]
                # Built in the worker process, after fork: the embedded outbox thread
                # and the database pool must not cross a fork.
                return create_app(settings)

        _Server().run()

    @main.command()
    @click.option("--once", is_flag=True, help="Run the due jobs, then exit.")
    @click.option("--kind", "kinds", multiple=True, help="Only these job kinds.")
    @click.pass_obj
    def worker(settings: Settings, once: bool, kinds: tuple[str, ...]) -> None:
        """Run an outbox worker: pushes, Google updates, webhooks. Run as many as you like."""
        from walletpass import wiring
        from walletpass.jobs.worker import Worker

        wiring.load_handlers()
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        with open_runtime(settings) as runtime:
            w = Worker(runtime, kinds=kinds or None)
            if once:
                click.echo(f"{w.run_until_idle()} jobs handled")
                return
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            w.run_forever(stop)

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @click.pass_obj
    def demo(settings: Settings, as_json: bool) -> None:
        """Create a demo merchant (stamp card, points card, coupon); print URLs and keys."""
        from walletpass.demo import create_demo

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

    @main.command()
    @click.option("--limit", default=50, show_default=True)
    @click.pass_obj
    def logs(settings: Settings, limit: int) -> None:
        """List the latest messages Apple Wallet posted to /apple/v1/log."""
        from walletpass.apple.models import AppleLog

        with open_runtime(settings) as runtime, runtime.transaction() as session:
            rows = session.scalars(select(AppleLog).order_by(AppleLog.id.desc()).limit(limit)).all()
            for row in rows:
                click.echo(f"{row.created_at:%Y-%m-%d %H:%M:%S} {row.serial or '-'} {row.message}")
            if not rows:
                click.echo("no logs")

    @main.group()
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
        from walletpass.tenancy.apikeys import create_api_key
        from walletpass.tenancy.models import Store

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

    @main.group()
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
        from walletpass.tenancy.users import create_user

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
