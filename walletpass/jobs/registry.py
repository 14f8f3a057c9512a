"""Job kinds and their handlers.

A handler takes ``(ctx, job)``: ``ctx`` is a :class:`JobContext` (settings, a session in
the job's transaction, shared clients), ``job`` the claimed row. It returns normally on
success, raises :class:`RetryLater` for a transient failure (backoff with jitter) and
:class:`PermanentFailure` for one that no retry can fix (kept as dead with its error).
A batch handler takes ``(ctx, jobs)`` and returns ``{job_id: None | Exception}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from walletpass.config import Settings
    from walletpass.jobs.models import Job
    from walletpass.runtime import Runtime


class RetryLater(Exception):
    """Transient failure; ``delay`` (seconds) overrides the computed backoff."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentFailure(Exception):
    """No retry can fix this; the job is kept as dead with this message."""


@dataclass
class JobContext:
    settings: Settings
    session: Session
    services: dict[str, Any] = field(default_factory=dict)
    # For work a handler does outside the job's transaction (a read-only one that takes
    # no lock: the Apple push signs the passes it announces first); None in unit tests.
    runtime: Runtime | None = None


Handler = Callable[[JobContext, "Job"], None]
BatchHandler = Callable[[JobContext, list["Job"]], dict[int, Exception | None]]


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Handler | None = None
    batch_handler: BatchHandler | None = None
    batch_size: int = 1
    # Retried for a span of time (settings.job_retry_hours since the job was queued) rather
    # than a number of attempts: an outage of the service it talks to (APNs) may last
    # hours, and a wallet that is never told of a change shows a stale card until opened.
    retry_by_time: bool = False


_KINDS: dict[str, Kind] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        _KINDS[name] = Kind(name, handler=fn)
        return fn

    return deco


def batch_handler(
    name: str, size: int = 500, *, retry_by_time: bool = False
) -> Callable[[BatchHandler], BatchHandler]:
    def deco(fn: BatchHandler) -> BatchHandler:
        _KINDS[name] = Kind(name, batch_handler=fn, batch_size=size, retry_by_time=retry_by_time)
        return fn

    return deco


def get(name: str) -> Kind | None:
    return _KINDS.get(name)


def kinds() -> dict[str, Kind]:
    return dict(_KINDS)


# Work a worker queues when it starts, if none is pending (the hourly loyalty sweep): each
# is called with a session and must be idempotent, since every worker calls it.
Periodic = Callable[["Session"], None]
_PERIODIC: list[Periodic] = []
# The scheduler keeps its own signature (the sweep's takes an optional run_at too).
_Scheduler = TypeVar("_Scheduler", bound=Periodic)


def periodic(fn: _Scheduler) -> _Scheduler:
    """Register ``fn`` (a domain's scheduler) to be called by every worker at start."""
    if fn not in _PERIODIC:
        _PERIODIC.append(fn)
    return fn


def periodic_work() -> list[Periodic]:
    return list(_PERIODIC)


# What a domain records when a job of another domain's kind is done, in the same
# transaction as the job's handler and its "done" (a campaign's Google deliveries, on its
# recipient rows): the job row itself is pruned after the retention period.
DoneHook = Callable[[JobContext, "Job"], None]
_DONE_HOOKS: dict[str, list[DoneHook]] = {}


def on_done(kind: str) -> Callable[[DoneHook], DoneHook]:
    """Register ``fn(ctx, job)`` to run after a job of ``kind`` (a single-job kind) is done."""

    def deco(fn: DoneHook) -> DoneHook:
        hooks = _DONE_HOOKS.setdefault(kind, [])
        if fn not in hooks:
            hooks.append(fn)
        return fn

    return deco


def done_hooks(kind: str) -> list[DoneHook]:
    return list(_DONE_HOOKS.get(kind, ()))
