"""Running ``async def`` workers: the same lifecycle as sync ones, on the loop.

How it works: `spawn_worker` admits the worker through the container's
`Slots` (``max_workers`` bounds sync and async workers together); the
starter schedules a task on the container's `LoopThread`. The task runs,
on the loop thread and in this order, what a pool thread runs for a sync
worker: inject dependencies and ``worker_setup``, await the method, settle
what the method left in flight, the entrypoint's ``handle_result`` (RPC
reply, ack), ``worker_result``, ``worker_teardown``; then it frees the slot.
No thread is held while the coroutine awaits, so ``max_workers: 500`` runs
500 ``await asyncio.sleep(1)`` at once on the loop's one thread.

Provider hooks are plain functions and run on the loop thread: they must
not block for long (the same rule nameko's green threads had). Waiting for
in-flight work registered by a sync-style dependency (`before_result`)
blocks, so that part runs on the loop's default executor instead.

A cancelled coroutine (graceful drain overrun, or a kill) is a worker that
raised `asyncio.CancelledError`: it still gets its reply, ack and hooks.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from nameko._aio.bridge import in_executor
from nameko._aio.detect import ASYNC_DRAIN_TIMEOUT_CONFIG_KEY, is_async_method
from nameko._aio.loop import LoopThread
from nameko._concurrency import Slots, current_thread_handle

__all__ = ["ASYNC_DRAIN_TIMEOUT_CONFIG_KEY", "AsyncWorkers", "is_async_method"]


class AsyncWorkers:
    """A container's event loop and the ``async def`` workers running on it."""

    def __init__(self, container: Any, slots: Slots) -> None:
        self.container = container
        self.slots = slots
        self.loop_thread = LoopThread(f"{container.service_name}-loop")

    def start(self) -> None:
        self.loop_thread.start()

    def starter(self, worker_ctx: Any, handle_result: Any) -> Callable[[], None]:
        """What `Slots.admit` runs: schedule the worker's task on the loop."""

        def start() -> None:
            self.spawn(worker_ctx, handle_result, self.slots.release)

        return start

    def spawn(self, worker_ctx: Any, handle_result: Any, on_done: Callable[[], object]) -> None:
        """Run the worker as a task of the loop; ``on_done()`` once it has ended."""
        self.loop_thread.spawn(lambda: self.run(worker_ctx, handle_result, on_done))

    async def run(self, worker_ctx: Any, handle_result: Any, on_done: Callable[[], object]) -> None:
        container = self.container
        container._worker_threads[worker_ctx] = current_thread_handle()  # the loop's
        try:
            providers, exc_info = container._start_worker(worker_ctx)
            result = None
            if exc_info is None:
                worker_ctx._collect_in_flight()
                result, exc_info = await self._await_method(worker_ctx)
                result, exc_info = await self._settle(worker_ctx, result, exc_info)
            container._end_worker(worker_ctx, handle_result, providers, result, exc_info)
        except BaseException:
            container._thread_crashed(worker_ctx, sys.exc_info())
        finally:
            container._worker_threads.pop(worker_ctx, None)
            on_done()

    async def _await_method(self, worker_ctx: Any) -> tuple[Any, Any]:
        method = getattr(worker_ctx.service, worker_ctx.entrypoint.method_name)
        try:
            return await method(*worker_ctx.args, **worker_ctx.kwargs), None
        except (Exception, asyncio.CancelledError) as exc:
            self.container._log_worker_error(worker_ctx, exc)
            return None, sys.exc_info()

    async def _settle(self, worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        if not worker_ctx._in_flight:
            worker_ctx._take_in_flight()
            return result, exc_info
        settle = self.container._settle_in_flight
        try:
            return await in_executor(settle, worker_ctx, result, exc_info)
        except asyncio.CancelledError:  # the wait goes on in its thread; we report now
            return (None, sys.exc_info()) if exc_info is None else (result, exc_info)

    def drain(self, timeout: float | None) -> None:
        """Wait for the workers in flight; after ``timeout`` seconds cancel
        those still running and wait for them to finish their lifecycle."""
        if not self.slots.wait_idle(timeout):
            self.slots.drop_pending()  # never started: their consumers requeue them
            self.loop_thread.cancel_all()
            self.slots.wait_idle()

    def kill(self) -> list[Any]:
        """Cancel running workers now; return the starters that never started."""
        dropped = self.slots.drop_pending()
        self.loop_thread.cancel_all()
        return dropped

    def stop(self) -> None:
        self.loop_thread.stop()
