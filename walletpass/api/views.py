"""The /api/v1 blueprint: builds the Api, registers every resource module, serves OpenAPI."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from walletpass import errors
from walletpass.api.framework import Api, problem_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")
api = Api(bp, title="walletpass API", version="1")

# Resource modules: each defines ``register(api)``.
RESOURCE_MODULES = ("scans", "programs", "members", "catalogue", "campaigns", "webhooks", "stats")


def _register_resources() -> None:
    import importlib

    for name in RESOURCE_MODULES:
        try:
            module = importlib.import_module(f"walletpass.api.{name}")
        except ModuleNotFoundError as exc:  # a resource module still being written
            if exc.name != f"walletpass.api.{name}":
                raise
            continue
        module.register(api)


_register_resources()


@bp.get("/openapi.json")
def openapi() -> Response:
    runtime = current_app.extensions["walletpass"]
    return jsonify(api.openapi(runtime.settings.public_url.rstrip("/") + "/api/v1"))


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> Response:
    return problem_response(errors.NotFound(f"no API route {request.method} {request.path}"))


@bp.errorhandler(405)
def _bad_method(_exc: Exception) -> Response:
    exc = errors.WalletpassError(f"{request.method} is not allowed on {request.path}")
    exc.status, exc.code, exc.title = 405, "method-not-allowed", "Method not allowed"
    return problem_response(exc)


@bp.errorhandler(413)
def _too_large(_exc: Exception) -> Response:
    exc = errors.WalletpassError("the request body is too large")
    exc.status, exc.code, exc.title = 413, "payload-too-large", "Payload too large"
    return problem_response(exc)
