"""What the dashboard shows (pure): rates and latency from successive announcements.

An announcement carries totals since the instance started; two of them
``dt`` seconds apart (the instance's own uptime clock, so the listener's
delays don't count) give the calls, errors and latency histogram of that
window. Instances of a service add up: rates are summed, latency is the
mean and the 95th percentile of the merged histogram (a bucket's upper
bound, as Prometheus' ``histogram_quantile`` would give at bucket edges).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nameko._presence.wire import LATENCY_BOUNDS_MS

__all__ = ["RATE_WINDOW", "Sample", "cluster_view", "percentile_ms"]

RATE_WINDOW = 10.0  # seconds of an instance's history that rates are computed over

Sample = tuple[float, dict[str, Any]]  # (uptime, stats by entrypoint key)


def percentile_ms(buckets: Sequence[int], fraction: float) -> float | None:
    """The upper bound (ms) of the bucket holding the ``fraction`` quantile;
    None without calls; the last bound doubled for the overflow bucket."""
    total = sum(buckets)
    if total <= 0:
        return None
    wanted = fraction * total
    running = 0
    index = 0
    for index, count in enumerate(buckets):  # noqa: B007 (the bucket found is used below)
        running += count
        if running >= wanted:
            break
    return LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1] * 2


def _window(history: Sequence[Sample]) -> tuple[Sample, Sample] | None:
    if len(history) < 2:
        return None
    newest = history[-1]
    oldest = next((s for s in history if newest[0] - s[0] <= RATE_WINDOW), newest)
    if oldest is newest:
        oldest = history[-2]
    return (oldest, newest) if newest[0] > oldest[0] else None


def _delta(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    new = new or {}
    old = old or {}
    buckets = new.get("buckets") or []
    old_buckets = old.get("buckets") or [0] * len(buckets)
    return {
        "calls": max(0, new.get("calls", 0) - old.get("calls", 0)),
        "errors": max(0, new.get("errors", 0) - old.get("errors", 0)),
        "latency_sum": max(0.0, new.get("latency_sum", 0.0) - old.get("latency_sum", 0.0)),
        "buckets": [max(0, a - b) for a, b in zip(buckets, old_buckets, strict=False)],
    }


class _Entry:
    """One entrypoint of a service, added up over its instances."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = {k: v for k, v in description.items() if k != "stats"}
        self.calls = self.errors = self.in_flight = 0
        self.rate = self.error_rate = 0.0
        self.window_calls = 0
        self.window_latency = 0.0
        self.buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)

    def add(self, stats: dict[str, Any] | None, window: tuple[Sample, Sample] | None) -> None:
        stats = stats or {}
        self.calls += stats.get("calls", 0)
        self.errors += stats.get("errors", 0)
        self.in_flight += stats.get("in_flight", 0)
        if window is None:
            return
        (t0, old), (t1, new) = window
        key = str(self.description.get("key"))
        delta = _delta(old.get(key), new.get(key))
        self.rate += delta["calls"] / (t1 - t0)
        self.error_rate += delta["errors"] / (t1 - t0)
        self.window_calls += delta["calls"]
        self.window_latency += delta["latency_sum"]
        for index, count in enumerate(delta["buckets"][: len(self.buckets)]):
            self.buckets[index] += count

    def view(self) -> dict[str, Any]:
        mean = self.window_latency / self.window_calls * 1000 if self.window_calls else None
        return {
            **self.description,
            "calls": self.calls,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "rate": round(self.rate, 2),
            "error_rate": round(self.error_rate, 2),
            "mean_ms": None if mean is None else round(mean, 2),
            "p95_ms": percentile_ms(self.buckets, 0.95),
        }


def cluster_view(instances: Iterable[tuple[dict[str, Any], Sequence[Sample], bool]]) -> list[Any]:
    """Services for the page, from (latest message, stats history, silent) per instance."""
    services: dict[str, dict[str, Any]] = {}
    entries: dict[str, dict[str, _Entry]] = {}
    for message, history, silent in instances:
        name = message["service"]
        service = services.setdefault(name, {"name": name, "instances": []})
        service["instances"].append(_instance_view(message, silent))
        window = _window(history)
        by_key = entries.setdefault(name, {})
        for ep in message.get("entrypoints") or ():
            entry = by_key.get(ep.get("key"))
            if entry is None:
                entry = by_key[ep.get("key")] = _Entry(ep)
            entry.add(ep.get("stats"), window)
    for name, service in services.items():
        views = [entry.view() for entry in entries[name].values()]
        service["entrypoints"] = sorted(views, key=lambda ep: (ep["name"], ep["type"]))
        states = {instance["state"] for instance in service["instances"]}
        service["state"] = "running" if states == {"running"} else "degraded"
    return [services[name] for name in sorted(services)]


def _instance_view(message: dict[str, Any], silent: bool) -> dict[str, Any]:
    return {
        "id": message["instance"],
        "host": message.get("host"),
        "pid": message.get("pid"),
        "version": message.get("version"),
        "uptime": message.get("uptime"),
        "state": "silent" if silent else message.get("state", "running"),
        "in_flight": message.get("in_flight", 0),
        "max_workers": message.get("max_workers"),
    }
