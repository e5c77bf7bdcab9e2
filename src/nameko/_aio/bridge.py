"""Results delivered on other threads (`OneShot`), awaited on an event loop.

The broker's I/O thread delivers confirms and replies into a `OneShot`; its
done-callback hands the outcome to the awaiting loop with
``call_soon_threadsafe`` (a write to the loop's self-pipe). Nothing here
holds a lock across an await, and nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from nameko._concurrency import OneShot

__all__ = ["awaitable", "wait_for_oneshot"]

T = TypeVar("T")


def awaitable(shot: OneShot[T], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[T]:
    """A future of ``loop`` (default: the running one) that ``shot``'s outcome settles."""
    loop = loop or asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    if shot.ready():  # no thread hop needed
        _settle(future, shot)
        return future

    def delivered(done: OneShot[T]) -> None:
        try:
            loop.call_soon_threadsafe(_settle, future, done)
        except RuntimeError:  # the loop is closed: nobody awaits any more
            pass

    shot.add_done_callback(delivered)
    return future


def _settle(future: asyncio.Future[Any], shot: OneShot[Any]) -> None:
    if future.done():  # cancelled, e.g. by a timeout
        return
    exc = shot.exception()
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(shot.get(0))


async def wait_for_oneshot(shot: OneShot[T], timeout: float | None) -> T:
    """Await ``shot``'s value (or raise its exception); `TimeoutError` after
    ``timeout`` seconds (None: no limit)."""
    future = awaitable(shot)
    if timeout is None:
        return await future
    return await asyncio.wait_for(future, timeout)
