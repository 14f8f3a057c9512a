"""The pass fetch a wallet makes after a push, answered beneath Flask.

After a campaign every phone that holds a changed pass fetches it within seconds, and the
web service, not APNs, then sets how long the campaign takes to reach everyone. Most of
those fetches need no rendering: the push job signed the pass before it went out, or the
phone already holds this version (304). For them, Flask's request context, URL map,
before/after hooks and response object were 44 % of the work (callgrind, a kept pass on
SQLite: 1,094,436 instructions a fetch through Flask, 609,958 here; a 304, 382,147).

This WSGI layer answers ``GET /apple/v1/passes/<passTypeIdentifier>/<serialNumber>`` when
the answer is one of those: 404, 401, 304, or the kept signature's 200. It hands the
request to the app unchanged in every other case: another method or path (HEAD included),
a service that is not ready (the app answers 503 and says why), a pass that must be
rendered and signed first, and any error (the app answers it and logs it as it does any
other). The answers are the app's own (walletpass.apple.views.latest_pass): the same
lookup, token check, dates and fetch record, from the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from walletpass.apple import services
from walletpass.apple.dates import http_date, if_modified_since
from walletpass.db import utcnow
from walletpass.passes import stored
from walletpass.passes.fetchlog import fetch_log
from walletpass.runtime import Runtime
from walletpass.startup import Readiness

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PREFIX = "/apple/v1/passes/"
PKPASS = "application/vnd.apple.pkpass"
_EMPTY = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "0")]


class PassFetches:
    """WSGI middleware: kept passes, 304s and refusals of the pass endpoint, without Flask."""

    def __init__(self, app: WsgiApp, runtime: Runtime, readiness: Readiness) -> None:
        self.app = app
        self.runtime = runtime
        self.readiness = readiness

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path: str = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "GET" or not path.startswith(PREFIX):
            return self.app(environ, start_response)
        pass_type_id, _, serial = path[len(PREFIX) :].partition("/")
        if (
            not pass_type_id
            or not serial
            or "/" in serial
            or "\x00" in path
            or self.readiness.problem() is not None
        ):
            return self.app(environ, start_response)
        try:
            answered = self._answer(environ, pass_type_id, serial)
        except Exception:  # the app answers it again, and logs what fails
            answered = None
        if answered is None:
            return self.app(environ, start_response)
        status, headers, body = answered
        start_response(status, headers)
        return [body]

    def _answer(
        self, environ: dict[str, Any], pass_type_id: str, serial: str
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        with self.runtime.single_statement() as conn:
            row = stored.fetch_row(conn, pass_type_id, serial)
        if row is None:
            return "404 NOT FOUND", list(_EMPTY), b""
        if not services.token_matches(environ.get("HTTP_AUTHORIZATION"), row.auth_token):
            return "401 UNAUTHORIZED", list(_EMPTY), b""
        since = if_modified_since(environ.get("HTTP_IF_MODIFIED_SINCE"))
        last_modified = http_date(row.modified_at)
        if since is not None and row.modified_at <= since:
            return "304 NOT MODIFIED", [("Last-Modified", last_modified)], b""
        data = stored.answer(row, utcnow(), self.runtime.settings)
        if data is None:
            return None  # to be rendered and signed: the app's view does that
        fetch_log(self.runtime).record(row.merchant_id, row.id, row.version)
        headers = [
            ("Content-Type", PKPASS),
            ("Content-Length", str(len(data))),
            ("Last-Modified", last_modified),
        ]
        return "200 OK", headers, data
