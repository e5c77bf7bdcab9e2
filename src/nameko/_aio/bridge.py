"""Results delivered on other threads (`OneShot`), awaited on an event loop.

The broker's I/O thread delivers confirms and replies into a `OneShot`; its
done-callback hands the outcome to the awaiting loop through the loop's
`Inbox` (one ``call_soon_threadsafe``, a write to the self-pipe, per burst). Nothing here
holds a lock across an await, and nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from nameko._concurrency import OneShot

__all__ = ["Inbox", "awaitable", "in_executor", "inbox_of"]

T = TypeVar("T")


class Inbox:
    """Callbacks for one loop from other threads, with one wake-up per batch.

    ``call_soon_threadsafe`` writes to the loop's self-pipe on every call;
    replies and requests arrive in bursts (many per socket read), so the
    first callback of a burst schedules `_drain` and the rest only join the
    deque. Relies on deque appends and pops being atomic."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._scheduled = False

    def put(self, fn: Callable[[], None]) -> None:
        self._calls.append(fn)
        if not self._scheduled:
            self._scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self._calls.clear()

    def _drain(self) -> None:
        self._scheduled = False  # before popping: a later put schedules again
        calls = self._calls
        while calls:
            calls.popleft()()


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox] = weakref.WeakKeyDictionary()


def inbox_of(loop: asyncio.AbstractEventLoop) -> Inbox:
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes.setdefault(loop, Inbox(loop))
    return inbox


def awaitable(shot: OneShot[T], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[T]:
    """A future of ``loop`` (default: the running one) that ``shot``'s outcome settles."""
    loop = loop or asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    if shot.ready():  # no thread hop needed
        _settle(future, shot)
        return future
    inbox = inbox_of(loop)
    shot.add_done_callback(lambda done: inbox.put(partial(_settle, future, done)))
    return future


def _settle(future: asyncio.Future[Any], shot: OneShot[Any]) -> None:
    if future.done():  # cancelled, e.g. by a timeout
        return
    exc = shot.exception()
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(shot.get(0))


def in_executor(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """Run blocking ``fn(*args)`` on the running loop's default executor."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)
