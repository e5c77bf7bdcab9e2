"""nameko 3's process-wide config: ``from nameko import config``.

nameko 2.x passes a config dict to every constructor; nameko 3 reads one
global mapping instead. Both styles live in one install: a constructor
given a dict uses it (2.x), one given nothing uses this object (3.x), and
`nameko run`/`shell`/`show-config` fill it from ``--config`` and
``--define`` whichever style the services are written in.

`Config.patch` swaps the whole contents (a deep copy is restored on exit),
so it is process-wide, not per thread, exactly as in nameko 3: tests that
patch config must not run services of two configs at the same time.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections import UserDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

__all__ = ["Config", "ConfigPatch", "config", "given_or_global"]

F = TypeVar("F", bound=Callable[..., Any])


class Config(UserDict[str, Any]):
    """The global config (nameko 3's ``nameko.Config``)."""

    def setup(self, data: Mapping[str, Any]) -> None:
        """Replace the contents with ``data``."""
        self.data.clear()
        self.data.update(data)

    def patch(self, data: Mapping[str, Any], clear: bool = False) -> ConfigPatch:
        """Apply ``data`` for the duration of a ``with`` block or a decorated
        call, then restore what was there before. Nestable."""
        return ConfigPatch(self, data, clear)


class ConfigPatch:
    """What `Config.patch` returns: a context manager, a decorator, and (as
    with `unittest.mock.patch`) ``start()``/``stop()`` for a patch that spans
    a fixture's setup and teardown."""

    def __init__(self, target: Config, data: Mapping[str, Any], clear: bool) -> None:
        self._target = target
        self._data = dict(data)
        self._clear = clear
        self._saved: list[dict[str, Any]] = []  # a stack: one patch object may be re-entered

    def __enter__(self) -> Config:
        self._saved.append(copy.deepcopy(self._target.data))
        if self._clear:
            self._target.data.clear()
        self._target.data.update(copy.deepcopy(self._data))
        return self._target

    def __exit__(self, *exc_info: object) -> None:
        self._target.setup(self._saved.pop())

    def start(self) -> Config:
        """Apply the patch until `stop` (same as entering a ``with`` block)."""
        return self.__enter__()

    def stop(self) -> None:
        """Undo the latest `start`; a no-op when none is active, like
        `unittest.mock.patch`'s ``stop``, so a teardown may call it safely."""
        if self._saved:
            self.__exit__(None, None, None)

    def __call__(self, func: F) -> F:
        if inspect.isgeneratorfunction(func):  # e.g. a pytest fixture that yields

            @functools.wraps(func)
            def generator(*args: Any, **kwargs: Any) -> Any:
                with self:
                    yield from func(*args, **kwargs)

            return cast(F, generator)  # functools.wraps: func's signature

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(F, wrapper)


config = Config()


def given_or_global(given: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A constructor's config: the dict it was given (2.x) or the global one (3.x)."""
    return config if given is None else given
