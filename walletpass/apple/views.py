"""Apple's PassKit web service under <PUBLIC_URL>/apple/v1 (bare status codes, as Apple specifies).

No session cookies and no CSRF here: Wallet authenticates with ``ApplePass <token>``.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from walletpass.apple import services
from walletpass.apple.dates import http_date, if_modified_since
from walletpass.cards.build import build_bundle
from walletpass.db import utcnow
from walletpass.passes import stored
from walletpass.passes.fetchlog import fetch_log
from walletpass.passes.models import Pass
from walletpass.passes.services import remember_signature
from walletpass.web.context import current_runtime

bp = Blueprint("apple", __name__, url_prefix="/apple/v1")


@bp.errorhandler(services.AppleError)
def _apple_error(exc: services.AppleError) -> Response:
    return Response(status=exc.status)


@bp.post("/devices/<library_id>/registrations/<pass_type_id>/<serial>")
def register(library_id: str, pass_type_id: str, serial: str) -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("pushToken"), str):
        # Authenticate first, so a bad token is still a 401 whatever the body.
        with current_runtime().transaction() as session:
            services.authenticate(
                session, pass_type_id, serial, request.headers.get("Authorization")
            )
        return Response(status=400)
    with current_runtime().transaction() as session:
        pass_row = services.authenticate(
            session, pass_type_id, serial, request.headers.get("Authorization")
        )
        created = services.register(session, pass_row, library_id, body["pushToken"])
    return Response(status=201 if created else 200)


@bp.delete("/devices/<library_id>/registrations/<pass_type_id>/<serial>")
def unregister(library_id: str, pass_type_id: str, serial: str) -> Response:
    with current_runtime().transaction() as session:
        pass_row = services.authenticate(
            session, pass_type_id, serial, request.headers.get("Authorization")
        )
        services.unregister(session, pass_row, library_id)
    return Response(status=200)


@bp.get("/devices/<library_id>/registrations/<pass_type_id>")
def changed_serials(library_id: str, pass_type_id: str) -> Response:
    runtime = current_runtime()
    tag = request.args.get("passesUpdatedSince")
    with runtime.single_statement() as conn:
        found = services.listed_since(conn, library_id, pass_type_id, tag)
    if found == services.FOREIGN:
        with runtime.transaction(readonly=True) as session:
            found = services.serials_since(session, library_id, pass_type_id, tag)
    if found is None or isinstance(found, str):
        return Response(status=204)
    serials, next_tag = found
    return jsonify({"serialNumbers": serials, "lastUpdated": next_tag})


@bp.get("/passes/<pass_type_id>/<serial>")
def latest_pass(pass_type_id: str, serial: str) -> Response:
    """GET, and HEAD (Flask routes it here; Werkzeug drops the body and keeps the headers,
    Content-Length included): the same status, dates and authentication. A HEAD is no
    fetch: a phone that only asked whether the pass changed holds no new version, so it
    is left out of the fetch log (the delivery proxy of campaigns and the KPIs)."""
    runtime = current_runtime()
    since = if_modified_since(request.headers.get("If-Modified-Since"))
    # One statement, outside a transaction block: the pass's token, dates and kept parts
    # (walletpass.passes.stored). A pass whose version was signed is answered from them.
    with runtime.single_statement() as conn:
        row = stored.fetch_row(conn, pass_type_id, serial)
    if row is None:
        return Response(status=404)
    if not services.token_matches(request.headers.get("Authorization"), row.auth_token):
        return Response(status=401)
    if since is not None and row.modified_at <= since:
        return Response(status=304, headers={"Last-Modified": http_date(row.modified_at)})
    data = stored.answer(row, utcnow(), runtime.settings)
    version, modified_at = row.version, row.modified_at
    if data is None:
        # Rendered and signed in a read-only transaction: on SQLite a writer holds the
        # database's one write lock, and the herd of fetches would queue behind it.
        with runtime.transaction(readonly=True) as session:
            pass_row = session.get(Pass, row.id)
            if pass_row is None:  # deleted since the read
                return Response(status=404)
            bundle = build_bundle(session, runtime.settings, pass_row)
        data, version, modified_at = bundle.data, bundle.version, bundle.modified_at
        if bundle.keep is not None:
            with runtime.transaction(row.merchant_id) as session:
                remember_signature(session, row.id, bundle)
    if request.method != "HEAD":
        fetch_log(runtime).record(row.merchant_id, row.id, version)
    return Response(
        data,
        mimetype="application/vnd.apple.pkpass",
        headers={"Last-Modified": http_date(modified_at)},
    )


@bp.post("/log")
def log() -> Response:
    body = request.get_json(silent=True)
    logs = body.get("logs") if isinstance(body, dict) else None
    if not isinstance(logs, list):
        return Response(status=400)
    with current_runtime().transaction() as session:
        services.record_logs(session, logs, request.remote_addr)
    return Response(status=200)
