"""A small in-process sliding-window rate limiter for the public forms.

In-process on purpose: it needs no Redis and stops the common abuse (a script hammering
the join form from one address). With several gunicorn workers each keeps its own
window, so the effective limit is N times higher; that is acceptable for this purpose.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Count one attempt for ``key``.

        :return: 0 if allowed, else the seconds until the next attempt would be allowed.
        """
        now = self.clock()
        with self._lock:
            self._prune(now)
            hits = self._hits.setdefault(key, deque())
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.001)
            hits.append(now)
            return 0.0

    def _prune(self, now: float) -> None:
        # Drops expired hits everywhere, so one-off visitors do not accumulate forever.
        cutoff = now - self.window
        for key in list(self._hits):
            hits = self._hits[key]
            while hits and hits[0] <= cutoff:
                hits.popleft()
            if not hits:
                del self._hits[key]
