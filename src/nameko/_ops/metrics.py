"""Metrics of one process: what its workers did, its connections, itself.

`WorkerMetrics` is a worker observer (`nameko._runtime.observers`), one per
container. Per worker it notes the start (two clock readings, one dict
entry, no lock) and, at the end, takes one lock to bump a few integers and
two histograms: no labels lookup, no allocation beyond the dict entry of a
new error type. Queue wait is observed at the end too, with the rest.
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
from nameko._runtime.extensions import nearest_name

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
    return nearest_name(entrypoint, _TYPES) or type(entrypoint).__name__.lower()


class _EntrypointStats:
    __slots__ = ("name", "kind", "calls", "errors", "latency", "queue_wait")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.calls = 0
        self.errors: dict[str, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.queue_wait = Histogram(QUEUE_WAIT_BUCKETS)

    def copy(self) -> _EntrypointStats:
        twin = _EntrypointStats(self.name, self.kind)
        twin.calls, twin.errors = self.calls, dict(self.errors)
        twin.latency, twin.queue_wait = self.latency.copy(), self.queue_wait.copy()
        return twin


class WorkerMetrics:
    """The worker observer of one container (see the module docstring)."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self._lock = Lock()
        # bound entrypoint -> its figures (one method may have two entrypoints)
        self._stats: dict[Any, _EntrypointStats] = {}
        # id(worker_ctx) -> (perf_counter at its start, seconds it waited in the queue);
        # a dict's set and pop are atomic, so the start takes no lock
        self._running: dict[int, tuple[float, float | None]] = {}
        # every entrypoint at zero from the start, so rate() sees the first call
        for entrypoint in container.entrypoints:
            self._entry(entrypoint)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def worker_started(self, worker_ctx: Any) -> None:
        sent_at = getattr(worker_ctx, "sent_at", None)
        waited = None if sent_at is None else max(0.0, time.time() - sent_at)
        self._running[id(worker_ctx)] = (time.perf_counter(), waited)

    def worker_finished(self, worker_ctx: Any, result: Any, exc_info: Any) -> None:
        now = time.perf_counter()
        started, waited = self._running.pop(id(worker_ctx), (now, None))
        entrypoint = worker_ctx.entrypoint
        with self._lock:
            stats = self._stats.get(entrypoint) or self._entry(entrypoint)
            stats.calls += 1
            stats.latency.observe(now - started)
            if waited is not None:
                stats.queue_wait.observe(waited)
            if exc_info is not None:
                error = exc_info[0].__name__
                stats.errors[error] = stats.errors.get(error, 0) + 1

    def _entry(self, entrypoint: Any) -> _EntrypointStats:
        stats = self._stats.get(entrypoint)
        if stats is None:
            kind = entrypoint_type(entrypoint)
            stats = self._stats[entrypoint] = _EntrypointStats(entrypoint.method_name, kind)
        return stats

    def snapshot(self) -> tuple[int, list[_EntrypointStats]]:
        with self._lock:
            return self.in_flight, [s.copy() for s in self._stats.values()]


def render(observers: Iterable[WorkerMetrics]) -> str:
    """The whole ``/metrics`` page."""
    snapshots = [(o.container, *o.snapshot()) for o in observers]
    out = Writer()
    _worker_families(out, snapshots)
    _connection_families(out, [container for container, _, _ in snapshots])
    _process_families(out)
    return out.text()


def _worker_families(out: Writer, snapshots: list[tuple[Any, int, list[Any]]]) -> None:
    rows = [
        ({"service": c.service_name, "entrypoint": s.name, "type": s.kind}, s)
        for c, _, stats in snapshots
        for s in sorted(stats, key=lambda s: (s.name, s.kind))
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
    ("undecodable", "Deliveries rejected because their headers could not be decoded."),
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
