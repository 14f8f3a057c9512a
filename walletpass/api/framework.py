"""A small, strict layer between Flask and the domain for the JSON API.

One declaration per operation (method, path, scopes, body/query/response models) drives
both request handling and the OpenAPI document, so the two cannot drift apart:

* ``Authorization: Bearer <api key>`` is checked first; the session is then bound to the
  key's merchant, so every query is tenant-scoped.
* Bodies and query strings are parsed by pydantic; failures are 422 problem+json listing
  each bad field. Nothing is validated by hand.
* Writes honour ``Idempotency-Key``: the stored answer is replayed for the same body,
  422 for a different one. The record is written in the same transaction as the change.
* Domain errors become RFC 9457 problems with a stable ``type``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, RootModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from werkzeug.exceptions import HTTPException

from walletpass import errors
from walletpass.api import docs
from walletpass.config import Settings
from walletpass.crm.models import IdempotencyRecord
from walletpass.runtime import Runtime
from walletpass.tenancy import apikeys
from walletpass.tenancy.apikeys import AuthenticatedKey
from walletpass.tenancy.models import Scope
from walletpass.web import ratelimit
from walletpass.web.context import current_runtime
from walletpass.web.nulbytes import nul_at
from walletpass.web.problems import PROBLEM_JSON, problem_response, problem_type

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ROUTABLE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


# Problems raised by the framework itself (not the domain). Defined here so that they are
# subclasses of WalletpassError and show up in errors.all_problem_types() once imported.
class MethodNotAllowed(errors.WalletpassError):
    status = 405
    code = "method-not-allowed"
    title = "This method is not allowed here"


class PayloadTooLarge(errors.WalletpassError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


# Database ids are 64-bit: a larger path id cannot exist, and PostgreSQL would reject it
# with an error (a 500) instead of finding nothing.
MAX_ID = 2**63 - 1


def validation_problem(
    exc: ValidationError, where: str, union_tag: str | None = None
) -> errors.WalletpassError:
    """422 listing each bad field as ``body.a.b`` / ``query.x``.

    :param union_tag: the body's ``type`` for a tagged union: pydantic puts the chosen tag
        into locations ("adjust.reason"); the client wants the field it sent ("reason").
    """
    details = []
    for err in exc.errors(include_url=False):
        parts = list(err["loc"])
        if union_tag is not None and parts and parts[0] == union_tag:
            parts = parts[1:]
        loc = ".".join(str(p) for p in parts)
        details.append({"field": f"{where}.{loc}" if loc else where, "message": err["msg"]})
    return errors.ValidationFailed(f"invalid {where}", errors=details)


@dataclass
class Context:
    """What a handler gets: the tenant-scoped session, the key, parsed input."""

    session: Session
    runtime: Runtime
    api_key: AuthenticatedKey
    body: Any = None
    query: Any = None
    path: dict[str, Any] = field(default_factory=dict)
    # The request's Idempotency-Key, for services that take their own idempotency key
    # (e.g. a ledger adjustment), so a retry is one change even past the stored answer.
    idempotency_key: str | None = None

    @property
    def merchant_id(self) -> int:
        return self.api_key.merchant_id

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


Handler = Callable[[Context], Any]

# Called in a fresh transaction when an operation fails (e.g. the scan log's failed scans).
ErrorHook = Callable[[Session, AuthenticatedKey, Any, errors.WalletpassError], None]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    scopes: frozenset[str]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    summary: str
    tag: str
    problems: tuple[type[errors.WalletpassError], ...]
    # Called in a fresh transaction after a domain error rolled the request back.
    on_error: ErrorHook | None = None
    # A multipart/form-data body (a file upload), as its JSON schema for the OpenAPI
    # document; the handler reads flask.request.files and .form.
    form: dict[str, Any] | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Routes:
    """A resource module's operations, declared on its module-level handlers.

    ``@routes.operation(...)`` only records the declaration; :meth:`Api.include` then
    serves them (as a Blueprint's routes wait for the app), so a handler is a plain
    function that can be imported and read on its own.
    """

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def operation(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        tag: str = "",
        problems: tuple[type[errors.WalletpassError], ...] = (),
        on_error: ErrorHook | None = None,
        form: dict[str, Any] | None = None,
    ) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method.upper(),
                    path,
                    fn,
                    frozenset(scopes),
                    body,
                    query,
                    response,
                    status,
                    summary or (fn.__doc__ or "").strip().split("\n")[0],
                    tag,
                    problems,
                    on_error,
                    form,
                )
            )
            return fn

        return deco


# -- cursor pagination ---------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    """An opaque cursor: clients pass it back, never build or parse it."""
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if isinstance(after, int) and not isinstance(after, bool) and 0 <= after <= MAX_ID:
            return after
    except (binascii.Error, ValueError, TypeError, KeyError):
        pass
    raise errors.ValidationFailed(
        "the cursor is not one this API returned",
        errors=[{"field": "query.cursor", "message": "invalid cursor"}],
    )


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[int],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` in id order (keyset: stable while rows are added or removed).

    :return: the rows, and the cursor of the next page (None on the last one).
    """
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column > after)
    # One row more than asked tells whether another page exists without a COUNT.
    rows = list(session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1].id)
    return rows, None


# last_used_at is informational; writing it on every call would serialize a busy till's
# requests on its key row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Api:
    def __init__(
        self,
        blueprint: Blueprint,
        *,
        title: str,
        version: str,
    ) -> None:
        self.blueprint = blueprint
        self.title = title
        self.version = version
        self.operations: list[Operation] = []
        self._local = threading.local()
        # Unknown paths and wrong methods under the prefix answer problem+json too: Flask
        # sends routing errors to app-level handlers only, which render HTML.
        for rule in ("/", "/<path:_rest>"):
            blueprint.add_url_rule(
                rule,
                endpoint="unrouted" if rule == "/" else "unrouted_path",
                view_func=self._unrouted,
                methods=list(ROUTABLE_METHODS),
                provide_automatic_options=False,
            )
        blueprint.record_once(self._register_docs)

    def _register_docs(self, state: Any) -> None:
        """``GET /api/docs``: the reference page, rendered from the OpenAPI document."""

        def api_docs() -> Response:
            runtime: Runtime = current_runtime()
            server = runtime.settings.public_url.rstrip("/") + (state.url_prefix or "")
            return Response(docs.render(self.openapi(server)), mimetype="text/html")

        state.app.add_url_rule("/api/docs", endpoint="api_docs", view_func=api_docs)

    def _unrouted(self, **_path: Any) -> Response:
        adapter = current_app.url_map.bind_to_environ(request.environ)
        allowed = []
        for method in ROUTABLE_METHODS:
            try:
                endpoint, _ = adapter.match(method=method)
            except HTTPException:
                continue
            if endpoint != request.endpoint:
                allowed.append(method)
        if allowed:
            exc = MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
            return problem_response(exc, {"Allow": ", ".join(allowed)})
        return problem_response(errors.NotFound(f"no API route {request.method} {request.path}"))

    def include(self, routes: Routes) -> None:
        """Serve a resource module's operations, in the order they were declared."""
        for op in routes.operations:
            self.operations.append(op)
            self.blueprint.add_url_rule(
                op.path, endpoint=op.operation_id, view_func=self._view(op), methods=[op.method]
            )

    def _view(self, op: Operation) -> Callable[..., Response]:
        def view(**path: Any) -> Response:
            try:
                return self._handle(op, path)
            except errors.WalletpassError as exc:
                headers = None
                if isinstance(exc, errors.RateLimited):
                    headers = {"Retry-After": str(exc.extra.get("retry_after", 1))}
                return problem_response(exc, headers)

        view.__name__ = op.operation_id
        return view

    def _handle(self, op: Operation, path: dict[str, Any]) -> Response:
        runtime: Runtime = current_runtime()
        raw = request.get_data(cache=True)
        idem_key = request.headers.get("Idempotency-Key") if op.method in WRITE_METHODS else None
        if idem_key is not None and not (1 <= len(idem_key) <= 200 and idem_key.isprintable()):
            raise errors.ValidationFailed("Idempotency-Key must be 1 to 200 printable characters")
        fingerprint = hashlib.sha256(f"{op.method} {request.path}\n".encode() + raw).hexdigest()
        failed: tuple[AuthenticatedKey, errors.WalletpassError] | None = None
        try:
            return self._attempts(op, runtime, path, raw, idem_key, fingerprint)
        except errors.WalletpassError:
            failed = getattr(self._local, "failed", None)
            if failed is not None and op.on_error is not None:
                key, exc = failed
                with runtime.transaction(key.merchant_id) as session:
                    op.on_error(session, key, getattr(self._local, "body", None), exc)
            raise
        finally:
            self._local.failed = None
            self._local.body = None

    def _attempts(
        self,
        op: Operation,
        runtime: Runtime,
        path: dict[str, Any],
        raw: bytes,
        idem_key: str | None,
        fingerprint: str,
    ) -> Response:
        for attempt in range(2):
            try:
                with runtime.transaction() as session:
                    key = self._authenticate(session, runtime, op)
                    session.info["merchant_id"] = key.merchant_id
                    # Only an authenticated caller learns what is wrong with its input.
                    query = self._parse_query(op)
                    body = self._parse_body(op, raw)
                    self._local.body = body
                    record = None
                    if idem_key is not None:
                        replay, record = self._claim_idempotency(
                            session, key, idem_key, fingerprint
                        )
                        if replay is not None:
                            return replay
                    if any(isinstance(v, int) and v > MAX_ID for v in path.values()):
                        raise errors.NotFound(f"nothing at {request.path}")
                    ctx = Context(session, runtime, key, body, query, path, idem_key)
                    try:
                        response = self._serialize(op, op.handler(ctx))
                    except errors.WalletpassError as exc:
                        self._local.failed = (key, exc)
                        raise
                    if record is not None:
                        record.status_code = response.status_code
                        record.body = response.get_data()
                    return response
            except IntegrityError:
                # A concurrent request with the same Idempotency-Key won the race; our
                # transaction (and its writes) rolled back. Replay the winner's answer.
                if idem_key is None or attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _authenticate(self, session: Session, runtime: Runtime, op: Operation) -> AuthenticatedKey:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.Unauthenticated("send Authorization: Bearer <api key>")
        key = apikeys.authenticate(
            session, token.strip(), touch_after=LAST_USED_RESOLUTION, cache=runtime.api_key_cache
        )
        if key is None:
            raise errors.Unauthenticated("unknown or revoked API key")
        # Per key, across the merchant's tills and processes (web/ratelimit.py).
        g.walletpass_api_key_id = key.id
        wait = ratelimit.hit(ratelimit.API)
        if wait is not None:
            raise errors.RateLimited(f"rate limit exceeded; retry in {wait}s", retry_after=wait)
        allowed = (
            key.scope == Scope.ADMIN
            or key.scope in op.scopes
            or (key.scope == Scope.READ and op.method == "GET")
        )
        if not allowed:
            raise errors.Forbidden(
                f"a {key.scope!r} key cannot call {op.method} {op.path}; needs one of "
                f"{', '.join(sorted(op.scopes | {'admin'}))}"
            )
        return key

    @staticmethod
    def _parse_query(op: Operation) -> Any:
        if op.query is None:
            return None
        args = request.args.to_dict()
        for name, value in args.items():
            if "\x00" in value or "\x00" in name:
                raise errors.ValidationFailed(
                    "the query must not contain NUL characters",
                    errors=[{"field": f"query.{name}", "message": "contains a NUL character"}],
                )
        try:
            return op.query.model_validate(args)
        except ValidationError as exc:
            raise validation_problem(exc, "query") from None

    @staticmethod
    def _parse_body(op: Operation, raw: bytes) -> Any:
        if op.body is None:
            return None
        if not raw.strip():
            raise errors.ValidationFailed(
                "a JSON body is required", errors=[{"field": "body", "message": "missing"}]
            )
        try:
            parsed = op.body.model_validate_json(raw)
        except ValidationError as exc:
            raise validation_problem(exc, "body", _union_tag(op.body, raw)) from None
        # PostgreSQL text cannot hold NUL: refuse it here as a 422, not a 500 at INSERT.
        if b"\\u0000" in raw:
            where = nul_at(json.loads(raw), "body")
            if where is not None:
                raise errors.ValidationFailed(
                    "text must not contain NUL characters",
                    errors=[{"field": where, "message": "contains a NUL character"}],
                )
        return parsed

    @staticmethod
    def _serialize(op: Operation, result: Any) -> Response:
        if op.status == 204 or result is None:
            return Response(status=204 if result is None else op.status)
        if op.response is not None and not isinstance(result, BaseModel):
            result = op.response.model_validate(result)
        payload = (
            result.model_dump_json(by_alias=True)
            if isinstance(result, BaseModel)
            else (json.dumps(result))
        )
        return Response(payload, status=op.status, mimetype="application/json")

    @staticmethod
    def _claim_idempotency(
        session: Session, key: AuthenticatedKey, idem_key: str, fingerprint: str
    ) -> tuple[Response | None, IdempotencyRecord | None]:
        scoped_key = f"{key.id}:{idem_key}"
        record = session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.key == scoped_key)
        ).one_or_none()
        if record is not None:
            if record.request_hash != fingerprint:
                raise errors.IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request"
                )
            replay = Response(
                record.body,
                status=record.status_code,
                mimetype="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
            return replay, None
        # Insert first: a concurrent twin blocks on the unique index until we commit,
        # then fails and replays our answer instead of doing the work twice.
        record = IdempotencyRecord(
            merchant_id=key.merchant_id,
            key=scoped_key,
            request_hash=fingerprint,
            status_code=0,
            body=b"",
        )
        session.add(record)
        session.flush()
        return None, record

    # -- OpenAPI -------------------------------------------------------------------

    def openapi(self, server_url: str) -> dict[str, Any]:
        inputs = {op.body for op in self.operations if op.body is not None}
        outputs = {op.response for op in self.operations if op.response is not None}
        wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
            (m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)
        ] + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)]
        # pydantic names a model "X-Input"/"X-Output" when its two modes differ (a Decimal
        # is a number or a string going in, a string coming out): use the refs it returns
        # rather than guessing "#/components/schemas/X".
        refs, top = models_json_schema(wanted, ref_template="#/components/schemas/{model}")
        schemas: dict[str, Any] = dict(top.get("$defs", {}))
        schemas["Problem"] = _PROBLEM_SCHEMA
        paths: dict[str, Any] = {}
        for op in self.operations:
            item = paths.setdefault(_openapi_path(op.path), {})
            item[op.method.lower()] = self._operation_doc(op, refs)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": _API_DESCRIPTION},
            "servers": [{"url": server_url}],
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "apiKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "walletpass API key (wp_...)",
                    }
                },
            },
            "security": [{"apiKey": []}],
            "x-problem-types": [
                {
                    "type": problem_type(kind.code),
                    "status": kind.status,
                    "title": kind.title,
                }
                for kind in sorted(
                    {k for op in self.operations for k in self._problems(op)},
                    key=lambda k: (k.status, k.code),
                )
            ],
        }

    @staticmethod
    def _problems(op: Operation) -> set[type[errors.WalletpassError]]:
        problems: set[type[errors.WalletpassError]] = {
            errors.Unauthenticated,
            errors.Forbidden,
            errors.RateLimited,
            errors.ValidationFailed,
            *op.problems,
        }
        if op.method in WRITE_METHODS:
            problems.add(errors.IdempotencyKeyReused)
        if _path_params(op.path):
            problems.add(errors.NotFound)
        return problems

    def _operation_doc(self, op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag] if op.tag else [],
            "description": _description(op),
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": schema}
                for name, schema in _path_params(op.path)
            ],
            "responses": {},
        }
        if op.query is not None:
            schema = op.query.model_json_schema()
            for name, prop in schema.get("properties", {}).items():
                doc["parameters"].append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in schema.get("required", []),
                        "schema": _strip_titles(prop),
                    }
                )
        if op.method in WRITE_METHODS:
            doc["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    "description": "Retry-safe writes: the same key and body replay the stored "
                    "answer; the same key with another body is a 422.",
                }
            )
        if op.body is not None:
            doc["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        if op.form is not None:
            doc["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": op.form}},
            }
        if op.status == 204 or op.response is None:
            doc["responses"][str(op.status)] = {"description": "Done"}
        else:
            doc["responses"][str(op.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
            }
        problems = self._problems(op)
        by_status: dict[int, list[type[errors.WalletpassError]]] = {}
        for p in problems:
            by_status.setdefault(p.status, []).append(p)
        for status, kinds in sorted(by_status.items()):
            listed = "; ".join(
                f"`{problem_type(k.code)}`: {k.title}" for k in sorted(kinds, key=lambda k: k.code)
            )
            doc["responses"][str(status)] = {
                "description": f"Problem types: {listed}",
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
            if status == errors.RateLimited.status:
                doc["responses"][str(status)]["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                }
        return doc


def _description(op: Operation) -> str:
    """The handler's docstring after its first line (the summary), then the scopes."""
    text = inspect.cleandoc(op.handler.__doc__ or "")
    rest = text.partition("\n")[2].strip()
    scopes = f"Scopes: {', '.join(sorted(op.scopes | {'admin'}))}."
    return f"{rest}\n\n{scopes}" if rest else scopes


def _union_tag(model: type[BaseModel], raw: bytes) -> str | None:
    if not issubclass(model, RootModel):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    tag = data.get("type") if isinstance(data, dict) else None
    return tag if isinstance(tag, str) else None


def _path_params(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, JSON schema) of each path parameter, typed by its Flask converter."""
    params = []
    for spec in re.findall(r"<([^>]+)>", path):
        converter, _, name = spec.rpartition(":")
        if converter == "int":
            schema: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
        else:
            schema = {"type": "string", "pattern": "^[^/]+$"}
        params.append((name, schema))
    return params


def _openapi_path(path: str) -> str:
    """The Flask rule as an OpenAPI path, relative to the server URL (which ends /api/v1)."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", path)


def _strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "title"}


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {
            "type": "string",
            "description": "Stable problem type, e.g. /problems/insufficient-points",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

_API_DESCRIPTION = (
    "The walletpass JSON API. Authenticate with `Authorization: Bearer <api key>`; keys "
    "carry one scope (till, crm, admin, read) and see only their merchant's data. Errors "
    "are `application/problem+json` (RFC 9457) with a stable `type`. Writes accept an "
    "`Idempotency-Key` header."
)
