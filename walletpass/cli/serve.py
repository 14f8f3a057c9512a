"""`walletpass serve`: the web app under gunicorn."""

from __future__ import annotations

import os

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from walletpass.app import create_app
from walletpass.cli.core import init_instance
from walletpass.config import Settings
from walletpass.web.accesslog import AccessLog

_DEFAULT_PUBLIC_URL = Settings.__dataclass_fields__["public_url"].default


@click.command()
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
    if settings.public_url == _DEFAULT_PUBLIC_URL and not os.environ.get("WALLETPASS_PUBLIC_URL"):
        # Unconfigured: passes and links point at where this server listens.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        settings = settings.override(public_url=f"http://{local}:{port}")
    settings = init_instance(settings)

    def listening(_arbiter: object) -> None:
        # gunicorn's when_ready: the socket is bound, so the address printed works.
        click.echo(
            f"walletpass listening on http://{host}:{port} (public URL {settings.public_url})"
        )

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")
            # Without pass serials and device ids (walletpass/web/accesslog.py).
            self.cfg.set("logger_class", AccessLog)
            self.cfg.set("when_ready", listening)

        # types-gunicorn's WSGI application takes a start_response that returns None;
        # PEP 3333's (and Flask's, typeshed's) returns the write callable.
        def load(self) -> Flask:  # type: ignore[override]
            # Built in the worker process, after fork: the embedded outbox thread
            # and the database pool must not cross a fork.
            return create_app(settings)

    _Server().run()
