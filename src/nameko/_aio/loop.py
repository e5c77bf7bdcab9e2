"""The event loop a container runs its ``async def`` workers on.

One loop per container, on a thread of its own (named ``<service>-loop``),
started with the container and closed after it stops. It is never the
AMQP I/O thread: a coroutine that blocks this loop delays the other
coroutines of its service, never the connection's heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from nameko._aio.bridge import Inbox
from nameko._concurrency import Event, start_thread

__all__ = ["LoopThread"]

_log = logging.getLogger(__name__)

StartCoroutine = Callable[[], Coroutine[Any, Any, None]]


class LoopThread:
    """An asyncio loop on a named daemon thread, with the tasks it started."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._inbox = Inbox(self.loop)
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread: Any = None

    def start(self) -> None:
        if self._thread is not None:
            return
        running = Event()
        self.loop.call_soon(running.set)
        self._thread = start_thread(self._run, self.name)
        running.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self._close()

    def _close(self) -> None:
        loop = self.loop
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    @property
    def on_loop(self) -> bool:
        """True when called from this loop's own thread."""
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def spawn(self, start: StartCoroutine) -> None:
        """Run ``start()``'s coroutine as a task of this loop (from any thread;
        requests come in bursts: one loop wake-up per burst, see `Inbox`)."""
        self._inbox.put(partial(self._start_task, start))

    def _start_task(self, start: StartCoroutine) -> None:
        task = self.loop.create_task(start())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        """Cancel every task `spawn` started that is still running."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._cancel_tasks)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop (tasks still running are cancelled) and close it."""
        if self._thread is None:
            self.loop.close()
            return
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread.ident is not None and not self.on_loop:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _log.warning("event loop thread %s did not stop within %ss", self.name, timeout)
