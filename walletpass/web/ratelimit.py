"""Rate limits: one limiter per app, counting in WALLETPASS_RATELIMIT_STORAGE_URL.

``memory://`` (the default) counts in the process, so with several gunicorn workers or
machines each keeps its own count; ``redis://host:port/db`` counts in Redis (the
``limits`` library's moving window), one count for every worker and machine. While Redis
does not answer, each process counts in its own memory and tries Redis again after
:data:`RETRY_STORE_AFTER` seconds, so the pages stay up.

A view counts a request by calling :func:`hit` once it knows the request is one a rule is
for (a join form posted, a claim that would mint a coupon, a sign-in attempt, an API call
once its key is authenticated) and answers 429 in its own form with the seconds returned.
A decorator on the route would count before the view runs (every GET of the join page,
every claim that re-opens an earlier coupon, API calls before their key is known).

Every rule is a sliding window: a refused client waits for its oldest counted request to
leave the window, not for the turn of a fixed minute.

Apple's web service is not limited: Wallet retries whatever is refused.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

EXTENSION = "walletpass_ratelimit"
# Keeps walletpass's counts apart from other users of the same Redis database.
KEY_PREFIX = "walletpass"
RETRY_STORE_AFTER = 30.0
_STORE_OPTIONS: dict[str, str | int] = {"wrap_exceptions": True}
# Seconds: a Redis that stopped answering must not hold a request for long.
_REDIS_OPTIONS: dict[str, str | int] = {"socket_connect_timeout": 1, "socket_timeout": 1}


def client_address() -> str:
    """Who a per-address count belongs to: the address the request came from."""
    return request.remote_addr or "unknown"


def api_key_id() -> str:
    """Whose API call this is; the API sets it once it has authenticated the key."""
    return str(g.walletpass_api_key_id)


@dataclass(frozen=True)
class Rule:
    """One limit: ``scope`` names its counts in the store, ``limit`` reads the allowance
    from the app's config (``limits``' notation, e.g. ``10/minute``) on each request,
    ``key`` tells whose count a request adds to."""

    scope: str
    limit: Callable[[dict[str, Any]], str]
    key: Callable[[], str] = client_address


# app.config["WALLETPASS_PUBLIC_POSTS_PER_MINUTE"] overrides the join and claim allowance.
POSTS_PER_MINUTE = 10


def _public_posts(config: dict[str, Any]) -> str:
    return f"{config.get('WALLETPASS_PUBLIC_POSTS_PER_MINUTE', POSTS_PER_MINUTE)}/minute"


JOIN = Rule("join", _public_posts)
OFFER_CLAIM = Rule("claim", _public_posts)
# Every attempt from one address counts, whichever account it names: the per-account
# lock-out (web/auth.py) does not stop one address trying a password on many accounts.
ADMIN_SIGN_IN = Rule(
    "admin-sign-in", lambda config: config.get("WALLETPASS_SIGN_IN_RATE_LIMIT", "10/minute")
)
# Each link may create the pass's object at Google, which has its own quota.
GOOGLE_SAVE = Rule(
    "google-save", lambda config: config.get("WALLETPASS_GOOGLE_SAVE_RATE_LIMIT", "30/minute")
)
API = Rule(
    "api", lambda config: config.get("WALLETPASS_API_RATE_LIMIT", "200/second"), key=api_key_id
)


@functools.lru_cache(maxsize=64)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)


Key = tuple[str, str, str]


class ProcessWindows:
    """Sliding windows counted in this process's memory: for each key, the times of the
    requests still inside its window, dropped as they leave it.

    ``limits``'s own memory store expires its counts from a timer thread, started again
    every 10 ms while any count is held: under gunicorn, about one thread every other API
    call, which cost more than the count itself. Here each count is trimmed when it is
    used, and keys no one used for a window are swept now and then, so the memory held
    stays bounded by the clients active in the last minutes.
    """

    SWEEP_EVERY = 60.0

    def __init__(self) -> None:
        self._hits: dict[Key, tuple[float, deque[float]]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def refused_for(self, item: RateLimitItem, key: Key) -> int | None:
        now = time.time()
        window = float(item.get_expiry())
        with self._lock:
            held = self._hits.get(key)
            if held is None:
                held = self._hits[key] = (window, deque())
            hits = held[1]
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) < item.amount:
                hits.append(now)
                refused = None
            else:
                refused = max(1, math.ceil(hits[0] + window - now))
            if now >= self._next_sweep:
                self._sweep(now)
        return refused

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_EVERY
        idle = [
            k for k, (window, hits) in self._hits.items() if not hits or hits[-1] <= now - window
        ]
        for key in idle:
            del self._hits[key]


class SharedWindows:
    """Sliding windows counted in a store every process shares (Redis), by ``limits``."""

    def __init__(self, storage_url: str) -> None:
        options = _STORE_OPTIONS | (_REDIS_OPTIONS if storage_url.startswith("redis") else {})
        self.strategy = MovingWindowRateLimiter(storage_from_string(storage_url, **options))

    def refused_for(self, item: RateLimitItem, key: Key) -> int | None:
        if self.strategy.hit(item, *key):
            return None
        reset = self.strategy.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset - time.time()))


class RateLimits:
    """The app's limiter, and the process's own count for when its store does not answer."""

    def __init__(self, storage_url: str) -> None:
        self.store: ProcessWindows | SharedWindows = (
            ProcessWindows() if storage_url == "memory://" else SharedWindows(storage_url)
        )
        self._store_down_until = 0.0
        self._memory: ProcessWindows | None = None
        self._lock = threading.Lock()

    def hit(self, rule: Rule) -> int | None:
        """Count this request against ``rule``.

        :return: None if it is allowed, else the whole seconds until one more would be.
        """
        item = _parsed(rule.limit(current_app.config))
        key = (KEY_PREFIX, rule.scope, rule.key())
        if time.monotonic() >= self._store_down_until:
            try:
                return self.store.refused_for(item, key)
            except StorageError as exc:
                self._store_failed(exc.storage_error)
        assert self._memory is not None
        return self._memory.refused_for(item, key)

    def _store_failed(self, error: Exception) -> None:
        with self._lock:
            if time.monotonic() < self._store_down_until:
                return  # another thread has just said so
            log.warning(
                "rate limits: the store does not answer (%s); counting in this process for %.0f s",
                error,
                RETRY_STORE_AFTER,
            )
            # Made before the pause is set: a thread that sees the pause counts in it.
            if self._memory is None:
                self._memory = ProcessWindows()
            self._store_down_until = time.monotonic() + RETRY_STORE_AFTER


def init_app(app: Flask, storage_url: str) -> RateLimits:
    limits = RateLimits(storage_url)
    app.extensions[EXTENSION] = limits
    return limits


def hit(rule: Rule) -> int | None:
    """Count the current request against ``rule`` (see :meth:`RateLimits.hit`)."""
    limits: RateLimits = current_app.extensions[EXTENSION]
    return limits.hit(rule)
