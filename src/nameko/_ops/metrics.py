"""Metrics of one process: what its workers did, its connections, itself.

`WorkerMetrics` is a worker observer (`nameko._runtime.observers`), one per
container. Per worker it takes a clock reading at the start and, at the
end, one lock to bump a few integers and two histograms: no labels lookup,
no allocation beyond the dict entry of a new entrypoint or error type.
Everything else (connection counters, consumers, RSS, threads) is read
only when somebody scrapes (`render`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from nameko._concurrency import Lock
from nameko._ops import process
from nameko._ops.exposition import Histogram, Writer
from nameko._ops.health import broker_of

__all__ = ["LATENCY_BUCKETS", "QUEUE_WAIT_BUCKETS", "WorkerMetrics", "entrypoint_type", "render"]

# seconds; RPC round trips here are ~1 ms, slow work runs for minutes
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # fmt: skip
# the AMQP timestamp has a resolution of one second: this shows backlogs, not milliseconds
QUEUE_WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

_TYPES = {  # entrypoint class (or a base of it) -> the ``type`` label
    "Rpc": "rpc",
    "EventHandler": "event",
    "Consumer": "consume",
    "Timer": "timer",
    "HttpRequestHandler": "http",
    "WebSocketRpc": "websocket",
}


def entrypoint_type(entrypoint: Any) -> str:
    for cls in type(entrypoint).__mro__:
        kind = _TYPES.get(cls.__name__)
        if kind is not None:
            return kind
    return type(entrypoint).__name__.lower()


class _EntrypointStats:
    __slots__ = ("kind", "calls", "errors", "latency", "queue_wait")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0
        self.errors: dict[str, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.queue_wait = Histogram(QUEUE_WAIT_BUCKETS)

    def copy(self) -> _EntrypointStats:
        twin = _EntrypointStats(self.kind)
        twin.calls, twin.errors = self.calls, dict(self.errors)
        twin.latency, twin.queue_wait = self.latency.copy(), self.queue_wait.copy()
        return twin


class WorkerMetrics:
    """The worker observer of one container (see the module docstring)."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.in_flight = 0
        self._lock = Lock()
        self._stats: dict[str, _EntrypointStats] = {}  # method name -> its figures
        self._started: dict[int, float] = {}  # id(worker_ctx) -> perf_counter at its start
        for (
            entrypoint
        ) in container.entrypoints:  # at zero from the start: rate() sees the first call
            self._entry(entrypoint)

    def worker_started(self, worker_ctx: Any) -> None:
        now = time.perf_counter()
        sent_at = getattr(worker_ctx, "sent_at", None)
        waited = None if sent_at is None else max(0.0, time.time() - sent_at)
        entrypoint = worker_ctx.entrypoint
        with self._lock:
            self.in_flight += 1
            self._started[id(worker_ctx)] = now
            if waited is not None:
                self._entry(entrypoint).queue_wait.observe(waited)

    def worker_finished(self, worker_ctx: Any, result: Any, exc_info: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            self.in_flight -= 1
            started = self._started.pop(id(worker_ctx), now)
            stats = self._entry(worker_ctx.entrypoint)
            stats.calls += 1
            stats.latency.observe(now - started)
            if exc_info is not None:
                error = exc_info[0].__name__
                stats.errors[error] = stats.errors.get(error, 0) + 1

    def _entry(self, entrypoint: Any) -> _EntrypointStats:
        name = entrypoint.method_name
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = _EntrypointStats(entrypoint_type(entrypoint))
        return stats

    def snapshot(self) -> tuple[int, dict[str, _EntrypointStats]]:
        with self._lock:
            return self.in_flight, {name: s.copy() for name, s in self._stats.items()}


def render(observers: Iterable[WorkerMetrics]) -> str:
    """The whole ``/metrics`` page."""
    snapshots = [(o.container, *o.snapshot()) for o in observers]
    out = Writer()
    _worker_families(out, snapshots)
    _connection_families(out, [container for container, _, _ in snapshots])
    _process_families(out)
    return out.text()


def _worker_families(out: Writer, snapshots: list[tuple[Any, int, dict[str, Any]]]) -> None:
    rows = [
        ({"service": c.service_name, "entrypoint": name, "type": s.kind}, s)
        for c, _, stats in snapshots
        for name, s in sorted(stats.items())
    ]
    out.family(
        "nameko_entrypoint_calls_total",
        "counter",
        "Workers that ended, by entrypoint.",
        [(labels, s.calls) for labels, s in rows],
    )
    out.family(
        "nameko_entrypoint_errors_total",
        "counter",
        "Workers that ended with an error, by entrypoint and exception type.",
        [({**labels, "error": e}, n) for labels, s in rows for e, n in sorted(s.errors.items())],
    )
    out.histogram(
        "nameko_entrypoint_latency_seconds",
        "Worker duration, from its start to its end (reply sent, hooks run).",
        [(labels, s.latency) for labels, s in rows],
    )
    out.histogram(
        "nameko_entrypoint_queue_wait_seconds",
        "From the message's AMQP timestamp (one-second resolution) to its worker's start.",
        [(labels, s.queue_wait) for labels, s in rows if sum(s.queue_wait.counts)],
    )
    services = [({"service": c.service_name}, in_flight, c.max_workers) for c, in_flight, _ in snapshots]  # fmt: skip
    out.family(
        "nameko_workers_in_flight",
        "gauge",
        "Workers running now.",
        [(labels, n) for labels, n, _ in services],
    )
    out.family(
        "nameko_max_workers",
        "gauge",
        "The max_workers of the service.",
        [(labels, m) for labels, _, m in services],
    )


_CONNECTION_COUNTERS = (
    ("published", "Messages published on the service's broker connection."),
    ("confirmed", "Publishes the broker confirmed (acked)."),
    ("returned", "Mandatory publishes the broker returned as unroutable."),
    ("nacked", "Publishes the broker refused (nacked)."),
    ("reconnects", "Times the connection was re-established after a loss."),
)


def _connection_families(out: Writer, containers: list[Any]) -> None:
    brokers = [({"service": c.service_name}, b) for c in containers if (b := broker_of(c))]
    for field, help_text in _CONNECTION_COUNTERS:
        suffix = "reconnects_total" if field == "reconnects" else f"messages_{field}_total"
        out.family(
            f"nameko_broker_{suffix}",
            "counter",
            help_text,
            [(labels, getattr(b.stats, field)) for labels, b in brokers],
        )
    statuses = [(labels, b, b.consumer_status()) for labels, b in brokers]
    out.family(
        "nameko_broker_connected",
        "gauge",
        "1 while the service's broker connection is up.",
        [(labels, int(b.is_connected)) for labels, b, _ in statuses],
    )
    out.family(
        "nameko_broker_consumers",
        "gauge",
        "Consumers the service wants on its connection.",
        [(labels, len(s)) for labels, _, s in statuses],
    )
    out.family(
        "nameko_broker_consumers_attached",
        "gauge",
        "Of those, the ones the broker is delivering to.",
        [(labels, sum(c.attached for c in s)) for labels, _, s in statuses],
    )


def _process_families(out: Writer) -> None:
    rss, threads = process.resident_bytes(), process.thread_count()
    if rss is not None:
        out.family("nameko_process_resident_memory_bytes", "gauge", "RSS.", [({}, rss)])
    if threads is not None:
        out.family("nameko_process_threads", "gauge", "Threads of the process.", [({}, threads)])
