"""A per-process cache whose entries are trusted for a fixed number of seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values read recently, kept ``seconds`` after they were put; ``seconds=0`` keeps
    nothing. What an entry can get wrong is bounded by that age: the owner says what may
    change meanwhile (for API keys: a revocation made in another process)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() >= entry[0]:
            return None
        return entry[1]

    def put(self, key: str, value: V) -> None:
        if self.seconds > 0:
            self._entries[key] = (self.clock() + self.seconds, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
