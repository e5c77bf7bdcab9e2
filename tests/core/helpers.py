"""Helpers shared by the tests under tests/core: a thread-safe `Recorder` of
what entrypoints saw, and `WorkerCtx`, a dependency that injects the
worker's context."""

from __future__ import annotations

from nameko._concurrency import Condition
from nameko.extensions import DependencyProvider

TIMEOUT = 10  # seconds a test waits for something to happen


class Recorder:
    """Thread-safe list of what handlers saw, with a wait for the n-th item."""

    def __init__(self) -> None:
        self.items: list = []
        self._changed = Condition()

    def add(self, item) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, count: int) -> list:
        with self._changed:
            reached = self._changed.wait_for(lambda: len(self.items) >= count, TIMEOUT)
        assert reached, f"saw {len(self.items)} of {count} expected items: {self.items}"
        return list(self.items)


class WorkerCtx(DependencyProvider):
    """Injects the worker context itself."""

    def get_dependency(self, worker_ctx):
        return worker_ctx
