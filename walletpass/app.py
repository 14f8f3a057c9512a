"""The Flask application factory. Views parse and authorise, then call the domain core."""

from __future__ import annotations

import atexit
import importlib
import logging
from typing import Any

from flask import Flask, Response, jsonify, request

from walletpass import wiring
from walletpass.apple.fastpath import PassFetches
from walletpass.config import Settings
from walletpass.jobs.worker import EmbeddedWorker
from walletpass.runtime import Runtime
from walletpass.startup import Readiness
from walletpass.web import auth, i18n, nulbytes, ratelimit
from walletpass.web.context import EXTENSION


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    start_worker: bool | None = None,
) -> Flask:
    """Build the app.

    :param settings: defaults to ``Settings.from_env()``.
    :param runtime: share an existing runtime (tests, the CLI).
    :param start_worker: run the embedded outbox worker thread; defaults to
        ``settings.embedded_worker``.
    """
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    runtime = runtime or Runtime.create(settings)
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.secret_key or None
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.extensions[EXTENSION] = runtime
    ratelimit.init_app(app, settings.ratelimit_storage_url)
    i18n.init_app(app, pseudo=settings.pseudo_locale)
    logging.basicConfig(level=settings.log_level)
    readiness = Readiness(runtime.engine)
    app.extensions["walletpass_readiness"] = readiness
    # Checked now, so the log says at once why the server will answer 503.
    readiness.problem()
    app.before_request(_until_ready(readiness))
    # A NUL character is refused before any view reads it (PostgreSQL cannot store one).
    nulbytes.init_app(app)
    register_blueprints(app)
    # The wallets' pass fetches that need no rendering are answered beneath Flask.
    app.wsgi_app = PassFetches(app.wsgi_app, runtime, readiness)  # type: ignore[method-assign]
    if start_worker if start_worker is not None else settings.embedded_worker:
        start_embedded_worker(app, runtime, readiness)
    return app


def _until_ready(readiness: Readiness):  # type: ignore[no-untyped-def]
    """Answer 503 while the database is unreachable or its schema behind the code.

    Without this, every page is a 500 with a traceback while /healthz says ok. /healthz
    says why (an operator's probe); other pages only that the service is unavailable.
    """

    def refuse() -> Response | None:
        problem = readiness.problem()
        if problem is None:
            return None
        if request.path == "/healthz":
            response = jsonify({"status": "unavailable", "detail": problem})
        elif request.path.startswith("/api/"):
            response = jsonify(
                {
                    "type": "about:blank",
                    "title": "Service Unavailable",
                    "status": 503,
                    "detail": "the service is starting or being upgraded; try again shortly",
                }
            )
            response.mimetype = "application/problem+json"
        else:
            response = Response("Service unavailable; try again shortly.\n", mimetype="text/plain")
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    return refuse


# Each module exposes ``bp``. Page blueprints (sessions, CSRF) and machine endpoints
# (Apple, Google, the bearer-token API, CRM webhooks) are kept apart.
BLUEPRINTS = (
    "walletpass.web.views",
    "walletpass.apple.views",
    "walletpass.google.views",
    "walletpass.api.views",
    "walletpass.crm.views",
    "walletpass.public.views",
    "walletpass.till.views",
    "walletpass.admin.views",
    "walletpass.campaigns.views",
)


def register_blueprints(app: Flask) -> None:
    auth.init_app(app)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)


def start_embedded_worker(app: Flask, runtime: Runtime, readiness: Readiness) -> Any:
    wiring.load_handlers()
    worker = EmbeddedWorker(runtime, readiness)
    worker.start()
    app.extensions["walletpass_worker"] = worker
    atexit.register(worker.stop)
    return worker
