"""A local Google Wallet look-alike for tests: OAuth token endpoint, walletobjects REST,
the issuer keys endpoint, and helpers to make a throwaway service account and signed
ECv2SigningOnly callback envelopes.

Behaviour follows specs/google-wallet.md: insert → 200 or 409; get → 200/404; PATCH merges
top-level fields and replaces arrays whole; addMessage appends and answers
``{"resource": obj}``; a loyalty object's ``linkedOfferIds`` must name offer objects that
exist (Google: "The offer objects must already exist"), else 400; no PUT, no DELETE; 401
without a valid Bearer token; the 4th notifying write per object in 24 h gets 403
quotaExceeded. Every body is validated against Google's discovery schema
(tests/google/walletobjects_schema.py); a violation is answered 400 and kept in
:attr:`GoogleStandIn.violations`, which fixtures assert is empty.

Usage::

    with GoogleStandIn(public_key_pem, tls=pki) as google:
        sa = make_service_account(tmp_path, google.token_uri)
        ...  # settings.google_api_url = google.api_url
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import importlib.util
import json
import secrets
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt as pyjwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

API_PREFIX = "/walletobjects/v1"
TOKEN_PATH = "/token"
KEYS_PATH = "/gp/m/issuer/keys"
SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SCHEMAS = {
    "loyaltyClass": "LoyaltyClass",
    "offerClass": "OfferClass",
    "loyaltyObject": "LoyaltyObject",
    "offerObject": "OfferObject",
}
CLASS_OF = {"loyaltyObject": "loyaltyClass", "offerObject": "offerClass"}
NOTIFY_LIMIT = 3
MAX_MESSAGES = 10


# -- service account -------------------------------------------------------------------


@functools.cache
def _rsa_key() -> rsa.RSAPrivateKey:
    # One 2048-bit key per test process: generation costs more than most tests.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class ServiceAccount:
    path: Path
    email: str
    key_id: str
    public_key_pem: bytes
    info: dict[str, Any]


def make_service_account(
    directory: str | Path,
    token_uri: str,
    *,
    email: str = "walletpass-test@walletpass-test.iam.gserviceaccount.com",
) -> ServiceAccount:
    """Write a service-account key file shaped like Google's, pointing at ``token_uri``."""
    key = _rsa_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = secrets.token_hex(20)
    info = {
        "type": "service_account",
        "project_id": "walletpass-test",
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    path = Path(directory) / "service-account.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return ServiceAccount(path, email, key_id, public_pem, info)


def service_account_public_key() -> bytes:
    return (
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# -- discovery validator ---------------------------------------------------------------


def load_schema() -> Any:
    """tests/google/walletobjects_schema.py's WalletObjectsSchema, however tests/ is on path."""
    module = sys.modules.get("walletobjects_schema")
    if module is None:
        path = Path(__file__).resolve().parent.parent / "google" / "walletobjects_schema.py"
        spec = importlib.util.spec_from_file_location("walletobjects_schema", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["walletobjects_schema"] = module
        spec.loader.exec_module(module)
    return module.WalletObjectsSchema.load()


# -- the server ------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    status: int = 0


@dataclass
class _Failure:
    method: str | None
    path: str
    status: int
    times: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class GoogleStandIn:
    """Google's token endpoint, walletobjects v1 and the issuer keys list on 127.0.0.1."""

    def __init__(
        self,
        public_key_pem: bytes | None = None,
        *,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        validate: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.public_key_pem = public_key_pem or service_account_public_key()
        self.tls = (str(tls_cert), str(tls_key)) if tls_cert and tls_key else None
        self.schema = load_schema() if validate else None
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.resources: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in SCHEMAS}
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.notifications: dict[str, list[datetime]] = {}
        self.keys_document: dict[str, Any] = {"keys": []}
        self._failures: list[_Failure] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()

    # -- addresses --------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def keys_url(self) -> str:
        return self.url + KEYS_PATH

    # -- programming and inspection ----------------------------------------------------

    def fail(
        self,
        path: str,
        status: int,
        *,
        method: str | None = None,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path`` (relative to
        the API prefix, e.g. "/loyaltyObject") with ``status``."""
        with self.lock:
            self._failures.append(
                _Failure(method, API_PREFIX + path, status, times, body, headers or {})
            )

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded API calls (token and keys requests excluded), filtered."""
        with self.lock:
            items = list(self.requests)
        return [
            r
            for r in items
            if r.path.startswith(API_PREFIX)
            and (method is None or r.method == method)
            and (path is None or r.path == API_PREFIX + path)
        ]

    def stored(self, resource: str, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            item = self.resources[resource].get(resource_id)
            return copy.deepcopy(item)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> GoogleStandIn:
        standin = self

        class Handler(_Handler):
            owner = standin

        server = _Server(("127.0.0.1", 0), Handler)
        server.owner = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            # Handshake in the handler thread, not in the accept loop.
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        # Idle keep-alive connections would block server_close() joining their threads.
        with self.lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> GoogleStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (handler threads) ---------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        path = urlsplit(raw_path).path
        body: Any = None
        if raw:
            ctype = headers.get("content-type", "")
            if "json" in ctype:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return 400, _error(400, "invalid JSON", "parseError"), {}
            else:
                body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        record = Recorded(method, path, body, headers)
        with self.lock:
            self.requests.append(record)
        status, payload, extra = self._dispatch(method, path, headers, body)
        record.status = status
        return status, payload, extra

    def _dispatch(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        if path == TOKEN_PATH and method == "POST":
            return self._token(body or {})
        if path == KEYS_PATH and method == "GET":
            with self.lock:
                return 200, copy.deepcopy(self.keys_document), {}
        if not path.startswith(API_PREFIX + "/"):
            return 404, _error(404, "no such endpoint", "notFound"), {}
        auth = headers.get("authorization", "")
        with self.lock:
            authorised = auth.startswith("Bearer ") and auth[7:] in self.tokens
        if not authorised:
            return (
                401,
                _error(401, "Request had invalid authentication credentials.", "authError"),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        failure = self._take_failure(method, path)
        if failure is not None:
            return (
                failure.status,
                failure.body or _error(failure.status, "injected failure", "backendError"),
                failure.headers,
            )
        parts = [unquote(p) for p in path[len(API_PREFIX) + 1 :].split("/")]
        resource = parts[0]
        if resource not in SCHEMAS:
            return 404, _error(404, f"unknown resource {resource}", "notFound"), {}
        if method in ("PUT", "DELETE"):
            # We never PUT (it clears omitted fields) and Google has no DELETE.
            return 405, _error(405, f"{method} not allowed in the stand-in", "notAllowed"), {}
        if len(parts) == 1 and method == "POST":
            return self._insert(resource, body)
        if len(parts) == 2 and method == "GET":
            return self._get(resource, parts[1])
        if len(parts) == 2 and method == "PATCH":
            return self._patch(resource, parts[1], body)
        if len(parts) == 3 and parts[2] == "addMessage" and method == "POST":
            return self._add_message(resource, parts[1], body)
        return 404, _error(404, "no such method", "notFound"), {}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}, {}
        try:
            claims = pyjwt.decode(
                form.get("assertion", ""),
                self.public_key_pem,
                algorithms=["RS256"],
                # google-auth always names Google's endpoint as audience, even when the key
                # file's token_uri points elsewhere (as here).
                audience=[GOOGLE_TOKEN_AUDIENCE, self.token_uri],
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except pyjwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}, {}
        if SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope", "error_description": "wallet scope missing"}, {}
        token = "ya29.standin-" + secrets.token_urlsafe(16)
        with self.lock:
            self.tokens.add(token)
            self.token_requests += 1
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}, {}

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self.lock:
            for failure in self._failures:
                if (
                    failure.times > 0
                    and path.startswith(failure.path)
                    and (failure.method is None or failure.method == method)
                ):
                    failure.times -= 1
                    return failure
        return None

    def _check(self, schema: str, body: Any, *, required: bool, where: str) -> str | None:
        if self.schema is None:
            return None
        problems = self.schema.validate(schema, body, required=required, semantic=True)
        if not problems:
            return None
        text = f"{where}: " + "; ".join(str(p) for p in problems)
        with self.lock:
            self.violations.append(text)
        return text

    def _insert(self, resource: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        problem = self._check(SCHEMAS[resource], body, required=True, where=f"POST {resource}")
        if problem:
            return 400, _error(400, problem, "invalidArgument"), {}
        item = {k: v for k, v in body.items() if k != "notifyPreference"}
        with self.lock:
            missing = self._missing_links(resource, item)
            if missing:
                return 400, _error(400, missing, "invalidResource"), {}
            store = self.resources[resource]
            if item["id"] in store:
                return 409, _error(409, f"Resource {item['id']} already exists", "duplicate"), {}
            if resource in CLASS_OF and item["classId"] not in self.resources[CLASS_OF[resource]]:
                return (
                    404,
                    _error(404, f"class {item['classId']} not found", "resourceNotFound"),
                    {},
                )
            store[item["id"]] = item
            return 200, copy.deepcopy(item), {}

    def _get(self, resource: str, rid: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            item = self.resources[resource].get(rid)
            if item is None:
                return 404, _error(404, f"Resource {rid} not found", "resourceNotFound"), {}
            return 200, copy.deepcopy(item), {}

    def _missing_links(self, resource: str, body: dict[str, Any]) -> str | None:
        # Caller holds the lock. Linking an offer object that was never inserted fails the
        # whole write at Google; the loyalty object is left as it was.
        if resource != "loyaltyObject":
            return None
        offers = self.resources["offerObject"]
        missing = [i for i in body.get("linkedOfferIds") or [] if i not in offers]
        return f"linked offer objects not found: {', '.join(missing)}" if missing else None

    def linked_offers(self, loyalty_object_id: str) -> list[str]:
        """The offer object ids the loyalty card shows (its stored linkedOfferIds)."""
        item = self.stored("loyaltyObject", loyalty_object_id) or {}
        return list(item.get("linkedOfferIds") or [])

    def _notify_allowed(self, rid: str) -> bool:
        # Caller holds the lock. Google's rule: 3 notifying writes per pass per 24 h.
        now = self.clock()
        recent = [t for t in self.notifications.get(rid, []) if t > now - timedelta(hours=24)]
        if len(recent) >= NOTIFY_LIMIT:
            return False
        recent.append(now)
        self.notifications[rid] = recent
        return True

    def _patch(
        self, resource: str, rid: str, body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        problem = self._check(SCHEMAS[resource], body, required=False, where=f"PATCH {resource}")
        if problem:
            return 400, _error(400, problem, "invalidArgument"), {}
        if body.get("id", rid) != rid:
            return 400, _error(400, "id in body differs from the path", "invalidArgument"), {}
        if resource not in CLASS_OF and body.get("reviewStatus") not in ("UNDER_REVIEW", "DRAFT"):
            return 400, _error(400, "class writes need reviewStatus UNDER_REVIEW", "invalid"), {}
        with self.lock:
            item = self.resources[resource].get(rid)
            if item is None:
                return 404, _error(404, f"Resource {rid} not found", "resourceNotFound"), {}
            missing = self._missing_links(resource, body)
            if missing:
                return 400, _error(400, missing, "invalidResource"), {}
            if body.get("notifyPreference") == "NOTIFY_ON_UPDATE" and not self._notify_allowed(rid):
                return 403, _quota_error(rid), {}
            # PATCH semantics: top-level fields merge, arrays (and sub-objects) are replaced.
            for key, value in body.items():
                if key != "notifyPreference":
                    item[key] = copy.deepcopy(value)
            return 200, copy.deepcopy(item), {}

    def _add_message(
        self, resource: str, rid: str, body: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        problem = self._check("AddMessageRequest", body, required=True, where="addMessage")
        if problem:
            return 400, _error(400, problem, "invalidArgument"), {}
        message = body["message"]
        with self.lock:
            item = self.resources[resource].get(rid)
            if item is None:
                return 404, _error(404, f"Resource {rid} not found", "resourceNotFound"), {}
            messages = item.setdefault("messages", [])
            if len(messages) >= MAX_MESSAGES:
                return 400, _error(400, "at most 10 messages per object", "invalidArgument"), {}
            if message.get("messageType") == "TEXT_AND_NOTIFY" and not self._notify_allowed(rid):
                return 403, _quota_error(rid), {}
            messages.append(copy.deepcopy(message))
            return 200, {"resource": copy.deepcopy(item)}, {}


def _error(code: int, message: str, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "walletobjects", "reason": reason, "message": message}],
        }
    }


def _quota_error(rid: str) -> dict[str, Any]:
    return _error(
        403,
        f"Quota exceeded: at most {NOTIFY_LIMIT} notifications per pass in 24 hours ({rid})",
        "quotaExceeded",
    )


class _Server(ThreadingHTTPServer):
    # Joined by server_close() once stop() has shut their sockets: no thread outlives a test.
    daemon_threads = False
    block_on_close = True
    owner: GoogleStandIn

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self.owner.lock:
            self.owner._conns.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self.owner.lock:
            self.owner._conns.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: GoogleStandIn
    timeout = 10  # an idle keep-alive connection ends by itself

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.owner.handle(self.command, self.path, headers, raw)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


# -- callbacks: Google's root key, an intermediate key, signed envelopes ---------------


def _b64_spki(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _lv(*parts: str) -> bytes:
    # Written out again here (not imported) so the test does not trust the code under test.
    out = b""
    for part in parts:
        data = part.encode()
        out += len(data).to_bytes(4, "little") + data
    return out


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


class CallbackSigner:
    """Plays Google's side of ECv2SigningOnly: a root key (served at the keys URL) signs an
    intermediate key, which signs each callback message."""

    def __init__(self, *, sender: str = "GooglePayPasses") -> None:
        self.sender = sender
        self.root = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = ec.generate_private_key(ec.SECP256R1())

    def keys_document(self, *, expires_ms: int | None = None) -> dict[str, Any]:
        expires = expires_ms or int(time.time() * 1000) + 7 * 24 * 3600 * 1000
        return {
            "keys": [
                {
                    "keyValue": _b64_spki(self.root.public_key()),
                    "protocolVersion": "ECv2SigningOnly",
                    "keyExpiration": str(expires),
                },
                # Keys of other protocols are served too and must be ignored.
                {
                    "keyValue": _b64_spki(ec.generate_private_key(ec.SECP256R1()).public_key()),
                    "protocolVersion": "ECv1",
                },
            ]
        }

    def envelope(
        self,
        *,
        issuer_id: str,
        class_id: str,
        object_id: str,
        event_type: str = "save",
        nonce: str | None = None,
        exp_ms: int | None = None,
        key_expiration_ms: int | None = None,
        sender: str | None = None,
    ) -> str:
        now_ms = int(time.time() * 1000)
        sender = sender or self.sender
        signed_key = json.dumps(
            {
                "keyValue": _b64_spki(self.intermediate.public_key()),
                "keyExpiration": str(key_expiration_ms or now_ms + 24 * 3600 * 1000),
            },
            separators=(",", ":"),
        )
        signed_message = json.dumps(
            {
                "classId": class_id,
                "objectId": object_id,
                "eventType": event_type,
                "expTimeMillis": exp_ms or now_ms + 60_000,
                "count": 1,
                "nonce": nonce or secrets.token_hex(16),
            },
            separators=(",", ":"),
        )
        return json.dumps(
            {
                "signature": _sign(
                    self.intermediate, _lv(sender, issuer_id, "ECv2SigningOnly", signed_message)
                ),
                "intermediateSigningKey": {
                    "signedKey": signed_key,
                    "signatures": [_sign(self.root, _lv(sender, "ECv2SigningOnly", signed_key))],
                },
                "protocolVersion": "ECv2SigningOnly",
                "signedMessage": signed_message,
            }
        )
