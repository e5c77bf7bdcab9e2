"""Wait for something to be called (public nameko 2.x path)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from nameko._concurrency import Lock, OneShot

__all__ = ["WaitResult", "wait_for_call"]


class WaitResult:
    """The first outcome sent to it: a value, or an exception to re-raise."""

    class NotReady(Exception):
        pass

    _result: Any = None
    _exc_info: Any = None
    has_result = False

    def send(self, result: Any, exc_info: Any) -> None:
        if not self.has_result:
            self.has_result = True
            self._result = result
            self._exc_info = exc_info

    def get(self) -> Any:
        if not self.has_result:
            raise WaitResult.NotReady()
        if self._exc_info is not None:
            raise self._exc_info[1].with_traceback(self._exc_info[2])
        return self._result


@contextmanager
def wait_for_call(
    obj: Any, target: str, callback: Callable[..., bool] | None = None, timeout: float | None = None
) -> Iterator[WaitResult]:
    """Patch ``obj.target`` with a pass-through wrapper; on leaving the block,
    wait until a call happened for which ``callback(args, kwargs, result,
    exc_info)`` is truthy (any call without a callback)."""
    original = getattr(obj, target)
    result = WaitResult()
    matched: OneShot[None] = OneShot()
    lock = Lock()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        res = exc_info = None
        try:
            res = original(*args, **kwargs)
            return res
        except Exception as exc:
            exc_info = (type(exc), exc, exc.__traceback__)
            raise
        finally:
            with lock:
                if not matched.ready() and (
                    callback is None or callback(args, kwargs, res, exc_info)
                ):
                    result.send(res, exc_info)
                    matched.send(None)

    with mock.patch.object(obj, target, new=wrapper):
        yield result
        if not matched.wait(timeout):
            raise TimeoutError(f"no matching call to {target} within {timeout} seconds")
