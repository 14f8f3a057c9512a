"""Rate limits: one Flask-Limiter per app, counting in WALLETPASS_RATELIMIT_STORAGE_URL.

``memory://`` (the default) counts in the process, so with several gunicorn workers or
machines each keeps its own count; ``redis://host:port/db`` counts in Redis, one count for
every worker and machine. While Redis does not answer, each process counts in its own
memory and tries Redis again after :data:`RETRY_STORE_AFTER` seconds, so the pages stay up.

A view counts a request by calling :func:`hit` once it knows the request is one a rule is
for (a join form posted, a claim that would mint a coupon, a sign-in attempt, an API call
once its key is authenticated) and answers 429 in its own form with the seconds returned.
Flask-Limiter's route decorators would count before the view runs (every GET of the join
page, every claim that re-opens an earlier coupon, API calls before their key is known),
and its path for decorated functions, which can count inside a view, resolves the limits
on each call: 450,000 instructions a hit (callgrind, in-process), 11 % of an API scan's 4
million. So a hit goes straight to the strategy of the app's Limiter, which holds the
store: 57,000 instructions in memory, 280,000 with Redis on this machine (the round trip).

Apple's web service is not limited: Wallet retries whatever is refused.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, RateLimiter

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
    from the app's config (Flask-Limiter's notation, e.g. ``10/minute``) on each request,
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


class RateLimits:
    """The app's limiter, and the process's own count for when its store does not answer."""

    def __init__(self, app: Flask, storage_url: str) -> None:
        options = _STORE_OPTIONS | (_REDIS_OPTIONS if storage_url.startswith("redis") else {})
        self.limiter = Limiter(
            client_address,
            storage_uri=storage_url,
            storage_options=options,
            # A sliding window: a refused client waits for its oldest counted request to
            # leave the window, not for the turn of a fixed minute.
            strategy="moving-window",
            key_prefix=KEY_PREFIX,
            headers_enabled=False,
        )
        # No limit is declared on a route (views call hit()), so the hooks Flask-Limiter
        # runs around every request, Apple's and the till's included, would find none: 320,000
        # instructions a request (callgrind), 8 % of an API scan. init_app adds them only
        # for an app that does not list the limiter yet; it still makes the store.
        app.extensions.setdefault("limiter", set()).add(self.limiter)
        self.limiter.init_app(app)
        self._store_down_until = 0.0
        self._memory: RateLimiter | None = None
        self._lock = threading.Lock()

    def hit(self, rule: Rule) -> int | None:
        """Count this request against ``rule``.

        :return: None if it is allowed, else the whole seconds until one more would be.
        """
        item = _parsed(rule.limit(current_app.config))
        key = (KEY_PREFIX, rule.scope, rule.key())
        if time.monotonic() >= self._store_down_until:
            try:
                return _refused_for(self.limiter.limiter, item, key)
            except StorageError as exc:
                self._store_failed(exc.storage_error)
        assert self._memory is not None
        return _refused_for(self._memory, item, key)

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
                self._memory = MovingWindowRateLimiter(MemoryStorage())
            self._store_down_until = time.monotonic() + RETRY_STORE_AFTER


def _refused_for(strategy: RateLimiter, item: RateLimitItem, key: tuple[str, ...]) -> int | None:
    if strategy.hit(item, *key):
        return None
    reset = strategy.get_window_stats(item, *key).reset_time
    return max(1, math.ceil(reset - time.time()))


def init_app(app: Flask, storage_url: str) -> RateLimits:
    limits = RateLimits(app, storage_url)
    app.extensions[EXTENSION] = limits
    return limits


def hit(rule: Rule) -> int | None:
    """Count the current request against ``rule`` (see :meth:`RateLimits.hit`)."""
    limits: RateLimits = current_app.extensions[EXTENSION]
    return limits.hit(rule)
