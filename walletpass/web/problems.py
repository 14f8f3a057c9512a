"""RFC 9457 problem details: how a WalletpassError is answered to a machine client.

Shared by the JSON API and the inbound CRM webhooks, which answer the same problem
documents; here, below both entry points, so neither imports the other.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from walletpass import errors

PROBLEM_JSON = "application/problem+json"


def problem_type(code: str) -> str:
    return f"/problems/{code}"


def problem_response(
    exc: errors.WalletpassError, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {
        "type": problem_type(exc.code),
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if exc.errors:
        body["errors"] = exc.errors
    body.update({k: v for k, v in exc.extra.items() if k not in body})
    return Response(json.dumps(body), status=exc.status, mimetype=PROBLEM_JSON, headers=headers)
