"""``nameko.testing.utils.ResourcePipeline`` (SPEC 11.2), on threads.

A pipeline keeps up to ``size`` resources made in advance by ``create()``
(nameko's test suite used it for RabbitMQ vhosts, whose creation is slow).
``with pipeline.run():`` starts a creating thread and a destroying thread;
``with pipeline.get() as resource:`` takes a ready resource (waiting if
none is) and hands it to ``destroy(resource)`` afterwards, off the caller's
thread. Leaving ``run()`` stops both threads and destroys every resource
still held. nameko ran the two loops on green threads; here they are
daemon threads from `nameko._concurrency`.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nameko._concurrency import start_thread

__all__ = ["ResourcePipeline"]

_STOP = object()


class ResourcePipeline:
    """Resources made ahead of use and destroyed after it."""

    def __init__(
        self, create: Callable[[], Any], destroy: Callable[[Any], None], size: int = 3
    ) -> None:
        if size <= 0:
            raise RuntimeError("Zero size would create unbounded resources")
        self.create = create
        self.destroy = destroy
        self.size = size
        self.ready: queue.Queue[Any] = queue.Queue(maxsize=size)
        self.trash: queue.Queue[Any] = queue.Queue()
        self._running = False

    def _create_loop(self) -> None:
        while self._running:
            resource = self.create()
            self.ready.put(resource)  # blocks while `size` are waiting
            if not self._running:
                break

    def _destroy_loop(self) -> None:
        while (resource := self.trash.get()) is not _STOP:
            self.destroy(resource)

    @contextmanager
    def run(self) -> Iterator[ResourcePipeline]:
        self._running = True
        creator = start_thread(self._create_loop, "resource-pipeline-create")
        destroyer = start_thread(self._destroy_loop, "resource-pipeline-destroy")
        try:
            yield self
        finally:
            self._running = False
            while creator.is_alive():  # unblock a creator waiting for room
                self._drain_ready()
                creator.join(0.05)
            self._drain_ready()
            self.trash.put(_STOP)
            destroyer.join()

    def _drain_ready(self) -> None:
        while True:
            try:
                self.trash.put(self.ready.get_nowait())
            except queue.Empty:
                return

    @contextmanager
    def get(self) -> Iterator[Any]:
        resource = self.ready.get()
        try:
            yield resource
        finally:
            self.trash.put(resource)
