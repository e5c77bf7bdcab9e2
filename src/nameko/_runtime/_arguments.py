"""Will a service method accept these arguments? Asked once per request.

`inspect.Signature.bind` answers it but costs ~10 µs a call, on the broker's
dispatch thread. Most service methods take plain parameters (no ``*args``,
``**kwargs``, keyword-only or positional-only ones); for those a checker
built once per method answers with a length test and a few lookups. Other
shapes use ``bind``. Either way a "no" is worded by `inspect.getcallargs`,
whose messages count ``self`` the way nameko users know them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from nameko.exceptions import IncorrectSignature

__all__ = ["check_arguments"]

Checker = Callable[[tuple[Any, ...], dict[str, Any]], bool]


def check_arguments(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Raise `IncorrectSignature` unless ``method(None, *args, **kwargs)`` would bind."""
    if _checker(method)(args, kwargs):
        return
    try:
        inspect.getcallargs(method, None, *args, **kwargs)
    except TypeError as exc:
        raise IncorrectSignature(str(exc)) from None
    try:  # getcallargs missed it (it ignores positional-only parameters)
        inspect.signature(method).bind(None, *args, **kwargs)
    except TypeError as exc:
        raise IncorrectSignature(str(exc)) from None


@functools.lru_cache(maxsize=4096)
def _checker(method: Callable[..., Any]) -> Checker:
    signature = inspect.signature(method)
    params = list(signature.parameters.values())
    plain = inspect.Parameter.POSITIONAL_OR_KEYWORD
    if not params or any(p.kind is not plain for p in params):
        return functools.partial(_bind, signature)
    names = [p.name for p in params[1:]]  # after `self`, bound to None
    required = [(i, p.name) for i, p in enumerate(params[1:]) if p.default is p.empty]
    return functools.partial(
        _plain, len(names), {name: i for i, name in enumerate(names)}, required
    )


def _plain(
    count: int,
    index: dict[str, int],
    required: list[tuple[int, str]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> bool:
    given = len(args)
    if given > count:
        return False
    for name in kwargs:
        position = index.get(name)
        if position is None or position < given:  # unknown, or also given by position
            return False
    return all(position < given or name in kwargs for position, name in required)


def _bind(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError:
        return False
    return True
