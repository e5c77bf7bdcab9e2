"""Calls, errors, latency and workers in flight per entrypoint, since start.

`StatsObserver` is a worker observer (`container.worker_observers`): two
method calls per worker, each a dict lookup and a few additions under one
uncontended lock (D29 gives the measured cost). Announcements carry the
totals; rates are computed by whoever listens (`nameko._presence.rates`),
so a service does no arithmetic on a timer and keeps no window.
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter
from typing import Any

from nameko._concurrency import Lock
from nameko._presence.describe import entrypoint_key
from nameko._presence.wire import LATENCY_BOUNDS_MS

__all__ = ["EntrypointStats", "StatsObserver"]

_BOUNDS_S = tuple(bound / 1000 for bound in LATENCY_BOUNDS_MS)
_STARTED_ATTR = "_presence_started"  # set on the WorkerContext: no shared table to lock


class EntrypointStats:
    __slots__ = ("buckets", "calls", "errors", "in_flight", "latency_sum")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.in_flight = 0
        self.latency_sum = 0.0  # seconds
        self.buckets = [0] * (len(_BOUNDS_S) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "latency_sum": round(self.latency_sum, 6),
            "buckets": list(self.buckets),
        }


class StatsObserver:
    """Counts every worker of one container, by entrypoint."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._stats: dict[Any, EntrypointStats] = {}

    def worker_started(self, worker_ctx: Any) -> None:
        setattr(worker_ctx, _STARTED_ATTR, perf_counter())
        stats = self._for(worker_ctx.entrypoint)
        with self._lock:
            stats.in_flight += 1

    def worker_finished(self, worker_ctx: Any, result: Any, exc_info: Any) -> None:
        started = getattr(worker_ctx, _STARTED_ATTR, None)
        elapsed = 0.0 if started is None else perf_counter() - started
        bucket = bisect_left(_BOUNDS_S, elapsed)
        stats = self._for(worker_ctx.entrypoint)
        with self._lock:
            stats.in_flight -= 1
            stats.calls += 1
            stats.latency_sum += elapsed
            stats.buckets[bucket] += 1
            if exc_info:
                stats.errors += 1

    def _for(self, entrypoint: Any) -> EntrypointStats:
        stats = self._stats.get(entrypoint)
        if stats is None:  # first worker of this entrypoint: rare, so the lock is fine
            with self._lock:
                stats = self._stats.setdefault(entrypoint, EntrypointStats())
        return stats

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Totals by entrypoint key (`describe.entrypoint_key`)."""
        with self._lock:
            return {entrypoint_key(ep): stats.as_dict() for ep, stats in self._stats.items()}

    def in_flight(self) -> int:
        with self._lock:
            return sum(stats.in_flight for stats in self._stats.values())
