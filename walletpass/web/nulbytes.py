"""Requests carrying a NUL character (U+0000) are refused at the edge, in each area's form.

PostgreSQL refuses NUL in text (psycopg raises when it is bound) and SQLite stores it, so
a NUL in a URL, a query, a form field or a JSON body reached the database and came back
as a 500 with a traceback on PostgreSQL: an unauthenticated way to flood the logs, and
on SQLite a value no other backend could hold. No field of the product accepts one, so
one app-wide check answers before any view runs: 404 for a path (it names nothing), 400
for the rest, as problem+json on the CRM webhooks, a bare status on Apple's web service
(as Apple specifies), and otherwise through the blueprint's own error page (the public
pages' message page, the till's JSON errors).

The JSON API is left to its framework, which refuses a NUL after authentication as a 422
naming the field (walletpass/api/framework.py): here it costs the purchase scan one
``startswith``.

Uploaded files are not checked here: a CSV import rejects the row (crm/bulk.py) or the
file (admin/imports.py) that holds one, with its line.

A JSON body is parsed here only when it holds the escape ``\\u0000``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, abort, request

from walletpass import errors
from walletpass.web.problems import problem_response

# Bodies the CRM webhook refuses unread (its MAX_BODY_BYTES) are not read here either.
_LARGEST_UNREAD_BODY = 256 * 1024
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# No view reads the body of these, so a NUL there reaches nothing.
_NO_BODY_READ = frozenset({"GET", "HEAD"})
_DETAIL = "the request carries a NUL character (U+0000), which no field accepts"


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul)


def refuse_nul() -> Response | None:
    # Read from the WSGI environ: this runs before every request, and the request
    # object's parsed properties were a tenth of what a wallet's pass fetch cost.
    environ = request.environ
    path = environ.get("PATH_INFO", "")
    if path.startswith("/api/"):
        return None
    if "\x00" in path:
        return _refuse(404)
    query = environ.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        return _refuse(400)
    if environ.get("REQUEST_METHOD") in _NO_BODY_READ:
        return None
    if _form_has_nul() or _body_has_nul():
        return _refuse(400)
    return None


def _form_has_nul() -> bool:
    if request.mimetype not in _FORMS:
        return False
    return any("\x00" in k or "\x00" in v for k, v in request.form.items(multi=True))


def _body_has_nul() -> bool:
    if request.mimetype in _FORMS:
        return False
    length = request.content_length
    if length == 0 or (length is not None and length > _LARGEST_UNREAD_BODY):
        return False
    raw = request.get_data(cache=True)
    if b"\x00" in raw:
        return True
    return b"\\u0000" in raw and _json_has_nul(raw)


def _json_has_nul(raw: bytes) -> bool:
    """Whether the JSON document decodes to a NUL (``\\\\u0000`` is a backslash, not one)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return False  # not JSON: the view says what is wrong with it
    return nul_at(doc, "body") is not None


def nul_at(value: Any, where: str) -> str | None:
    """The location of the first string (or key) holding a NUL character, if any (the
    API names it in its 422)."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = nul_at(key, where) or nul_at(item, f"{where}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = nul_at(item, f"{where}.{i}")
            if found:
                return found
    return None


def _refuse(status: int) -> Response:
    # By path, not blueprint: a path that matches no route still gets its area's form.
    path = request.path
    if path.startswith("/apple/"):
        return Response(status=status)
    if path.startswith("/webhooks/"):
        exc = errors.NotFound(_DETAIL) if status == 404 else errors.WalletpassError(_DETAIL)
        return problem_response(exc)
    abort(status, description=_DETAIL)
