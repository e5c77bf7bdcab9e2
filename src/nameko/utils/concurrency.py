"""Run one method on many objects at once, on plain threads."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nameko._concurrency import start_thread

__all__ = ["SpawningProxy", "SpawningSet", "fail_fast_imap"]


def fail_fast_imap(pool: Any, call: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
    """Yield ``call(item)`` for each item as the calls finish (one thread
    each); the first call that raises re-raises here and no more results are
    yielded. ``pool`` is accepted for nameko compatibility and not used:
    threads can't be killed, so the others run to completion in the background.
    """
    del pool
    results: queue.Queue[tuple[bool, Any]] = queue.Queue()
    items = list(items)

    def run(item: Any) -> None:
        try:
            results.put((True, call(item)))
        except BaseException as exc:
            results.put((False, exc))

    for item in items:
        start_thread(run, f"fail_fast_imap:{getattr(call, '__name__', 'call')}", item)
    for _ in items:
        ok, value = results.get()
        if not ok:
            raise value
        yield value


class SpawningProxy:
    """``proxy.method(*a)`` calls ``item.method(*a)`` on every item, each in
    its own thread, waits for all and returns their results (in item order).
    With ``abort_on_error`` the first error is raised as soon as it happens;
    otherwise the first error is raised once every call has finished."""

    def __init__(self, items: Iterable[Any], abort_on_error: bool = False) -> None:
        self._items = items
        self.abort_on_error = abort_on_error

    def __getattr__(self, name: str) -> Callable[..., list[Any]]:
        def spawning_method(*args: Any, **kwargs: Any) -> list[Any]:
            items = list(self._items)
            if len(items) == 1:  # no thread needed
                return [getattr(items[0], name)(*args, **kwargs)]
            return _run_all(items, name, args, kwargs, self.abort_on_error)

        return spawning_method


def _run_all(
    items: list[Any], name: str, args: tuple[Any, ...], kwargs: dict[str, Any], abort: bool
) -> list[Any]:
    done: queue.Queue[tuple[int, bool, Any]] = queue.Queue()

    def run(index: int) -> None:
        try:
            done.put((index, True, getattr(items[index], name)(*args, **kwargs)))
        except BaseException as exc:
            done.put((index, False, exc))

    for index in range(len(items)):
        start_thread(run, f"spawning:{name}", index)
    results: list[Any] = [None] * len(items)
    error: BaseException | None = None
    for _ in items:
        index, ok, value = done.get()
        if ok:
            results[index] = value
        elif abort:
            raise value
        elif error is None:
            error = value
    if error is not None:
        raise error
    return results


class SpawningSet(set[Any]):
    """A set whose `all` runs a method on every member concurrently."""

    @property
    def all(self) -> SpawningProxy:
        return SpawningProxy(self)
