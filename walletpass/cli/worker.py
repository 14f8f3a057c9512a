"""`walletpass worker`: an outbox worker in its own process."""

from __future__ import annotations

import logging
import os
import signal
import threading

import click

from walletpass import wiring
from walletpass.cli.common import open_runtime
from walletpass.config import Settings
from walletpass.jobs.worker import Worker


@click.command()
@click.option("--once", is_flag=True, help="Run the due jobs, then exit.")
@click.option("--kind", "kinds", multiple=True, help="Only these job kinds.")
@click.pass_obj
def worker(settings: Settings, once: bool, kinds: tuple[str, ...]) -> None:
    """Run an outbox worker: pushes, Google updates, webhooks. Run as many as you like."""
    wiring.load_handlers()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with open_runtime(settings) as runtime:
        w = Worker(runtime, kinds=kinds or None)
        if once:
            click.echo(f"{w.run_until_idle()} jobs handled")
            return
        if settings.worker_nice:
            # Below the web processes: under load, a phone's fetch goes before the signing
            # of the next chunk of pushes, which then waits (the pushes pace themselves).
            os.nice(settings.worker_nice)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        w.run_forever(stop)
