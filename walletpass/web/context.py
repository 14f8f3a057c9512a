"""The process's runtime as seen from a request: the one accessor every view uses."""

from __future__ import annotations

from flask import current_app

from walletpass.runtime import Runtime

# The key create_app stores the runtime under.
EXTENSION = "walletpass"


def current_runtime() -> Runtime:
    """The runtime of the app serving this request (settings, engine, transactions)."""
    runtime: Runtime = current_app.extensions[EXTENSION]
    return runtime
