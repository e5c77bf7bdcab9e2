"""Optional run-time features of ``nameko run`` (operations).

Each feature is a function ``feature(runner, config)`` called once the
runner has its containers and before they start: it looks at the config,
and if it is enabled attaches itself (a worker observer, an extension, a
server of its own) and returns a callable that undoes it when ``nameko run``
exits (or None). Features live in their own private packages; this list is
the only place ``nameko run`` learns of them, so adding one is one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nameko.runners import ServiceRunner
from nameko.utils import import_from_path

__all__ = ["FEATURES", "close_features", "start_features"]

_log = logging.getLogger("nameko.cli")

Closer = Callable[[], None]
Feature = Callable[[ServiceRunner, dict[str, Any]], Closer | None]

# dotted paths, imported when `nameko run` starts, after the services'
# modules: a feature's imports (http.server...) must not shadow a service's
# module of the same name, and cost nothing to other commands
FEATURES: list[str] = [
    "nameko._tracing.tracing_feature",  # TRACING: true (D27)
    "nameko._presence.feature.presence_feature",  # announcements for `nameko cluster` (D29)
    "nameko._ops.feature.ops_feature",  # OPS_ADDRESS: /healthz /readyz /metrics (D26)
]


def start_features(runner: ServiceRunner, config: dict[str, Any]) -> list[Closer]:
    closers = []
    for path in FEATURES:
        feature: Feature = import_from_path(path)
        closer = feature(runner, config)
        if closer is not None:
            closers.append(closer)
    return closers


def close_features(closers: list[Closer]) -> None:
    for close in reversed(closers):
        try:
            close()
        except Exception:
            _log.exception("while closing %r", close)
