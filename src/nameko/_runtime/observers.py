"""Worker observers: code that watches every worker of a container.

Metrics and traces need to see each worker begin and end without
being dependency providers (a provider changes the service's attributes, and
is declared by the service, not by the operator). A container's
``worker_observers`` list holds objects with two methods, both called on the
worker's own thread (the event loop's, for an ``async def`` method):

* ``worker_started(worker_ctx)``: before dependencies are injected, also for
  a worker that will not run (its deadline passed);
* ``worker_finished(worker_ctx, result, exc_info)``: once the worker is over
  (its result handled, e.g. the reply sent; ``worker_result`` and
  ``worker_teardown`` run), with its final result or error.

They must be quick and should not raise: a failure is logged and the worker
goes on. Add observers before the container starts. A container without
observers pays one truthiness check per worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["WorkerObserver", "notify_finished", "notify_started"]

_log = logging.getLogger("nameko.containers")


class WorkerObserver(Protocol):
    def worker_started(self, worker_ctx: Any) -> None: ...

    def worker_finished(self, worker_ctx: Any, result: Any, exc_info: Any) -> None: ...


def notify_started(observers: Iterable[WorkerObserver], worker_ctx: Any) -> None:
    for observer in observers:
        try:
            observer.worker_started(worker_ctx)
        except Exception:
            _log.exception("worker observer %r failed at the start of %s", observer, worker_ctx)


def notify_finished(
    observers: Iterable[WorkerObserver], worker_ctx: Any, result: Any, exc_info: Any
) -> None:
    for observer in observers:
        try:
            observer.worker_finished(worker_ctx, result, exc_info)
        except Exception:
            _log.exception("worker observer %r failed at the end of %s", observer, worker_ctx)
