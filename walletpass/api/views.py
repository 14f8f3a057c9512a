"""The /api/v1 blueprint: the Api, every resource module's routes on it, the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from walletpass import errors
from walletpass.api import (
    campaigns,
    catalogue,
    certificates,
    members,
    programs,
    scans,
    stats,
    webhooks,
)
from walletpass.api.framework import Api, MethodNotAllowed, PayloadTooLarge, problem_response
from walletpass.web.context import current_runtime

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = Api(bp, title="walletpass API", version="1")

# Each resource module declares its operations on its ``routes``; this is the order of the
# OpenAPI document's paths.
for resource in (scans, programs, members, catalogue, campaigns, webhooks, stats, certificates):
    api.include(resource.routes)


@bp.get("/openapi.json")
def openapi() -> Response:
    runtime = current_runtime()
    return jsonify(api.openapi(runtime.settings.public_url.rstrip("/") + "/api/v1"))


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> Response:
    return problem_response(errors.NotFound(f"no API route {request.method} {request.path}"))


@bp.errorhandler(405)
def _bad_method(_exc: Exception) -> Response:
    return problem_response(MethodNotAllowed(f"{request.method} is not allowed on {request.path}"))


@bp.errorhandler(413)
def _too_large(_exc: Exception) -> Response:
    return problem_response(PayloadTooLarge("the request body is too large"))
