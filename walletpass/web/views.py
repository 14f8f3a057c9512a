"""/healthz, /metrics, /p/<serial>.pkpass and template assets."""

from __future__ import annotations

import hmac
import re

from flask import Blueprint, Response, abort, jsonify, request, send_file
from sqlalchemy import select, text

from walletpass.cards.build import build_bundle
from walletpass.health.expiry import cached_dates
from walletpass.passes.models import Pass
from walletpass.web import metrics
from walletpass.web.context import current_runtime

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/web",
)

_ASSET = re.compile(r"^[a-z0-9_]+(@[23]x)?\.png$")


@bp.get("/healthz")
def healthz() -> Response:
    with current_runtime().transaction(readonly=True) as session:
        session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@bp.get("/metrics")
def prometheus() -> Response:
    runtime = current_runtime()
    token = runtime.settings.metrics_token
    if token:
        scheme, _, sent = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip(), token):
            return Response(
                "metrics need the token WALLETPASS_METRICS_TOKEN names\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    certificates = cached_dates(runtime)
    with runtime.transaction(readonly=True) as session:
        body = metrics.render(session, runtime.services, certificates)
    return Response(body, mimetype="text/plain; version=0.0.4")


@bp.get("/p/<serial>.pkpass")
def download_pkpass(serial: str) -> Response:
    runtime = current_runtime()
    # Built without the write lock, as the Apple web service's fetch is (apple/views.py),
    # and nothing is kept: the signed parts are kept for passes in a wallet only (a
    # device's registration), so what is stored grows with those, not with downloads.
    with runtime.transaction(readonly=True) as session:
        pass_row = session.scalars(
            select(Pass).where(Pass.serial == serial).execution_options(all_merchants=True)
        ).one_or_none()
        if pass_row is None:
            abort(404)
        bundle = build_bundle(session, runtime.settings, pass_row)
    return Response(
        bundle.data,
        mimetype="application/vnd.apple.pkpass",
        headers={"Content-Disposition": f'attachment; filename="{serial}.pkpass"'},
    )


@bp.get("/assets/templates/<name>/<filename>")
def template_asset(name: str, filename: str) -> Response:
    """Template images at public URLs: Google fetches logos and heroes from here."""
    settings = current_runtime().settings
    if not re.fullmatch(r"[a-z0-9_]+", name) or not _ASSET.match(filename):
        abort(404)
    path = settings.templates_dir / name / filename
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="image/png", max_age=86400)
