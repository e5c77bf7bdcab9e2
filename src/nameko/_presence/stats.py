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
_MARK_ATTR = "_presence_mark"  # (stats, start time), set on the WorkerContext


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
        stats = self._stats.get(worker_ctx.entrypoint) or self._new(worker_ctx.entrypoint)
        with self._lock:
            stats.in_flight += 1
        # kept on the worker itself: no shared table to look it up in again
        setattr(worker_ctx, _MARK_ATTR, (stats, perf_counter()))

    def worker_finished(self, worker_ctx: Any, result: Any, exc_info: Any) -> None:
        mark = getattr(worker_ctx, _MARK_ATTR, None)
        if mark is None:  # it started before this observer was attached
            return
        stats, started = mark
        elapsed = perf_counter() - started
        bucket = bisect_left(_BOUNDS_S, elapsed)
        with self._lock:
            stats.in_flight -= 1
            stats.calls += 1
            stats.latency_sum += elapsed
            stats.buckets[bucket] += 1
            if exc_info:
                stats.errors += 1

    def _new(self, entrypoint: Any) -> EntrypointStats:
        with self._lock:  # the first worker of an entrypoint only
            return self._stats.setdefault(entrypoint, EntrypointStats())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Totals by entrypoint key (`describe.entrypoint_key`)."""
        with self._lock:
            return {entrypoint_key(ep): stats.as_dict() for ep, stats in self._stats.items()}

    def in_flight(self) -> int:
        with self._lock:
            return sum(stats.in_flight for stats in self._stats.values())
