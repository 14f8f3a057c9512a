"""The composition root: the modules whose job handlers and periodic work the outbox runs.

The job system knows no domain; each domain registers its handlers with
``walletpass.jobs.registry`` when imported. The entry points (the web app, the CLI, the
tests) call :func:`load_handlers` before they make a worker.
"""

from __future__ import annotations

# Imported for the handlers and periodic work they register.
import walletpass.admin.imports
import walletpass.apple.logprune
import walletpass.apple.push
import walletpass.campaigns.jobs
import walletpass.crm.outbound
import walletpass.google.sync
import walletpass.health.warnings
import walletpass.jobs.prune
import walletpass.loyalty.reward_windows
import walletpass.loyalty.sweeps
import walletpass.mail.jobs
import walletpass.offers.lifecycle

HANDLER_MODULES = (
    walletpass.admin.imports,
    walletpass.apple.logprune,
    walletpass.apple.push,
    walletpass.campaigns.jobs,
    walletpass.crm.outbound,
    walletpass.google.sync,
    walletpass.health.warnings,
    walletpass.jobs.prune,
    walletpass.loyalty.reward_windows,
    walletpass.loyalty.sweeps,
    walletpass.mail.jobs,
    walletpass.offers.lifecycle,
)


def load_handlers() -> tuple[object, ...]:
    """The modules whose handlers are now registered (importing this module did it); the
    call marks, where a worker is made, that it needs them."""
    return HANDLER_MODULES
