"""Google Wallet REST client (walletobjects v1) over google-auth's AuthorizedSession.

No generated client: the handful of calls we make are plain JSON over HTTPS, and errors are
mapped here, in one place, to three exceptions the job handlers translate into retry
decisions (specs/google-wallet.md §3, §5).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any, Literal
from urllib.parse import quote

import requests
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from walletpass.config import Settings

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/wallet_object.issuer"]
CLASS_RESOURCES = frozenset({"loyaltyClass", "offerClass"})
OBJECT_RESOURCES = frozenset({"loyaltyObject", "offerObject"})
Resource = Literal["loyaltyClass", "offerClass", "loyaltyObject", "offerObject"]

# (connect, read) seconds. Google answers in well under a second; a job that hangs holds
# its lease and a worker slot, so fail fast and let the outbox retry.
DEFAULT_TIMEOUT = (5.0, 15.0)


class GoogleError(Exception):
    """Base of every Google Wallet API failure."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class GoogleTransient(GoogleError):
    """Worth retrying: 5xx, 429 rate limiting, connection errors, timeouts."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class GooglePermanent(GoogleError):
    """A 4xx that no retry fixes (bad payload, bad id, missing console permission)."""


class GoogleNotFound(GooglePermanent):
    """404: the class or object does not exist (yet)."""


class GoogleQuotaExceeded(GoogleError):
    """Quota exhausted. On a notifying write this is the 3-per-24h notification limit:
    the caller should redo the write silently (§5.3)."""


class GoogleWalletClient:
    """One per process (workers keep it in ``ctx.services["google"]``); thread-safe enough
    for the worker's use: requests sessions are shared, the class cache has a lock."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        credentials: Any = None,
    ) -> None:
        if credentials is None:
            if not settings.google_service_account_file:
                raise GooglePermanent("WALLETPASS_GOOGLE_SERVICE_ACCOUNT_FILE is not set")
            # token_uri comes from the key file, which is how tests point it at a stand-in.
            credentials = service_account.Credentials.from_service_account_file(
                settings.google_service_account_file, scopes=SCOPES
            )
        self.settings = settings
        self.base_url = settings.google_api_url.rstrip("/")
        self.timeout = timeout
        self.http = AuthorizedSession(credentials, refresh_timeout=sum(timeout))
        self._class_hashes: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GoogleWalletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resources --------------------------------------------------------------------

    def insert_or_patch(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """Create ``body`` or, if its id exists (409), PATCH it with the same body.

        Deterministic ids make this idempotent: a retried insert lands on the PATCH path.
        """
        body = _prepare(resource, body)
        try:
            return self._call("POST", f"/{resource}", body)
        except GooglePermanent as exc:
            if exc.status != 409:
                raise
        log.debug("google %s %s exists; patching", resource, body["id"])
        return self._call("PATCH", f"/{resource}/{_q(body['id'])}", body)

    def ensure_class(self, resource: Resource, body: dict[str, Any]) -> bool:
        """Upsert a class unless this process already sent this exact body.

        Classes change rarely and every sync would otherwise cost an extra call.
        Returns whether a call was made.
        """
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if self._class_hashes.get(body["id"]) == digest:
                return False
        self.insert_or_patch(resource, body)
        with self._lock:
            self._class_hashes[body["id"]] = digest
        return True

    def class_confirmed(self, class_id: str) -> bool:
        """Whether this process has seen Google accept class ``class_id``."""
        with self._lock:
            return class_id in self._class_hashes

    def get(self, resource: Resource, resource_id: str) -> dict[str, Any]:
        """:raise GoogleNotFound: no such class/object."""
        return self._call("GET", f"/{resource}/{_q(resource_id)}")

    def patch(
        self, resource: Resource, resource_id: str, body: dict[str, Any], *, notify: bool = False
    ) -> dict[str, Any]:
        """PATCH: top-level fields merge, arrays are replaced whole, so send whole arrays.

        :param notify: ask Google to push a notification for allowlisted field changes. The
            preference does not persist, so it is sent with every write that should notify.
        """
        body = _prepare(resource, body)
        if notify:
            body["notifyPreference"] = "NOTIFY_ON_UPDATE"
        else:
            body.pop("notifyPreference", None)
        return self._call("PATCH", f"/{resource}/{_q(resource_id)}", body)

    def add_message(
        self, resource: Resource, resource_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """addMessage is not idempotent: callers check the object's messages first."""
        result = self._call(
            "POST", f"/{resource}/{_q(resource_id)}/addMessage", {"message": message}
        )
        return result.get("resource", result)

    # -- transport --------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url + path
        try:
            response = self.http.request(method, url, json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            raise GoogleTransient(f"{method} {path}: timeout") from exc
        except requests.ConnectionError as exc:
            raise GoogleTransient(f"{method} {path}: connection failed: {exc}") from exc
        except auth_exceptions.RefreshError as exc:
            # Token endpoint said no. invalid_grant (bad key, clock) will not heal by itself.
            retryable = bool(getattr(exc, "retryable", False))
            cls = GoogleTransient if retryable else GooglePermanent
            raise cls(f"{method} {path}: token refresh failed: {exc}") from exc
        except auth_exceptions.TransportError as exc:
            raise GoogleTransient(f"{method} {path}: token endpoint unreachable: {exc}") from exc
        except requests.RequestException as exc:
            raise GoogleTransient(f"{method} {path}: {exc}") from exc
        with response:
            if response.status_code < 300:
                if not response.content:
                    return {}
                return response.json()
            raise error_from_response(method, path, response)


_SHARED_LOCK = threading.Lock()


def shared_client(services: dict[str, Any], settings: Settings) -> GoogleWalletClient:
    """The process's client, kept in ``services["google"]`` (the runtime closes it).

    Web threads and the embedded worker share one dict, so creation is locked: a second
    client would hold its own connection pool and token, and never be closed.
    """
    client = services.get("google")
    if client is None:
        with _SHARED_LOCK:
            client = services.get("google")
            if client is None:
                client = services["google"] = GoogleWalletClient(settings)
    return client


def error_from_response(method: str, path: str, response: requests.Response) -> GoogleError:
    """Map an error response to one of our exceptions (spec §3 error table)."""
    status = response.status_code
    message, reason = _error_details(response)
    text = f"{method} {path}: {status} {reason or ''} {message}".strip()
    haystack = f"{reason or ''} {message}".lower()
    if status in (403, 429) and "quota" in haystack:
        return GoogleQuotaExceeded(text, status=status, reason=reason)
    if status == 429 or (status == 403 and ("ratelimit" in haystack or "rate limit" in haystack)):
        return GoogleTransient(
            text, status=status, reason=reason, retry_after=_retry_after(response)
        )
    if status >= 500:
        return GoogleTransient(
            text, status=status, reason=reason, retry_after=_retry_after(response)
        )
    if status == 404:
        return GoogleNotFound(text, status=status, reason=reason)
    return GooglePermanent(text, status=status, reason=reason)


def _error_details(response: requests.Response) -> tuple[str, str | None]:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300], None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return str(data)[:300], None
    reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    reason = next((r for r in reasons if r), None) or error.get("status")
    return str(error.get("message", ""))[:300], reason


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: rare from Google; the outbox backoff is good enough


def _prepare(resource: str, body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    if resource in CLASS_RESOURCES:
        # A class write without it is refused, and DRAFT classes cannot hold objects (§4).
        body["reviewStatus"] = "UNDER_REVIEW"
    return body


def _q(resource_id: str) -> str:
    return quote(resource_id, safe="")
