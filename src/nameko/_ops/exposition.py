"""The Prometheus text exposition format, version 0.0.4, written by hand.

Why not ``prometheus_client`` (D26): its metrics take a lock and a labels
lookup per observation on the worker path and live in a process-wide
registry (where nameko-prometheus registers too); ours are plain counters
kept by the observer, and this module only turns a snapshot into text when
somebody scrapes. The tests read our output with ``prometheus_client``'s
own parser.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["CONTENT_TYPE", "Histogram", "Writer"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str]


class Histogram:
    """Counts per bucket (``le`` bounds, +Inf implied) and the sum. Not
    locked: its owner observes and snapshots under its own lock."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: a value on a bound counts in
        self.sum += value

    def copy(self) -> Histogram:
        twin = Histogram(self.bounds)
        twin.counts, twin.sum = list(self.counts), self.sum
        return twin


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class Writer:
    """Collects metric families and renders them, one ``# HELP``/``# TYPE``
    header per family, as the format requires."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]
    ) -> None:
        """A counter (``name`` ends in ``_total``) or a gauge."""
        self._header(name, kind, help_text)
        for labels, value in samples:
            self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(
        self, name: str, help_text: str, samples: Iterable[tuple[Labels, Histogram]]
    ) -> None:
        self._header(name, "histogram", help_text)
        for labels, histogram in samples:
            self._histogram(name, dict(labels), histogram)

    def _histogram(self, name: str, labels: dict[str, str], histogram: Histogram) -> None:
        cumulative = 0
        bounds = [*histogram.bounds, math.inf]
        for bound, count in zip(bounds, histogram.counts, strict=True):
            cumulative += count
            bucket = {**labels, "le": _number(bound)}
            self._lines.append(f"{name}_bucket{_labels(bucket)} {cumulative}")
        self._lines.append(f"{name}_sum{_labels(labels)} {_number(histogram.sum)}")
        self._lines.append(f"{name}_count{_labels(labels)} {cumulative}")

    def _header(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {_escape(help_text)}")
        self._lines.append(f"# TYPE {name} {kind}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
