"""A container's entrypoints as plain data: what `nameko cluster` prints.

Computed once per container (signatures and docstrings do not change while
it runs), so announcing costs a dict copy, not an `inspect` walk.
"""

from __future__ import annotations

import inspect
from typing import Any

from nameko._runtime.extensions import nearest_name

__all__ = ["describe_entrypoints", "entrypoint_key", "entrypoint_kind"]

MAX_DOC = 2000  # characters of a docstring announced: keeps messages small

# the decorator users write, by entrypoint class name (subclasses: nearest base)
_KINDS = {
    "Rpc": "rpc",
    "EventHandler": "event_handler",
    "Consumer": "consume",
    "HttpRequestHandler": "http",
    "Timer": "timer",
    "Cron": "cron",  # a Timer subclass, but its schedule is the expression
    "WebSocketRpc": "websocket_rpc",
}


def entrypoint_kind(entrypoint: Any) -> str:
    return nearest_name(entrypoint, _KINDS) or type(entrypoint).__name__


def entrypoint_key(entrypoint: Any) -> str:
    """One entrypoint of a service: a method may have several (``@rpc`` and ``@timer``)."""
    return f"{entrypoint_kind(entrypoint)}:{entrypoint.method_name}"


def describe_entrypoints(container: Any) -> list[dict[str, Any]]:
    described = [_describe(container.service_cls, ep) for ep in container.entrypoints]
    return sorted(described, key=lambda ep: (ep["name"], ep["type"]))


def _describe(service_cls: type, entrypoint: Any) -> dict[str, Any]:
    method = getattr(service_cls, entrypoint.method_name, None)
    return {
        "key": entrypoint_key(entrypoint),
        "type": entrypoint_kind(entrypoint),
        "name": entrypoint.method_name,
        "signature": _signature(method),
        "doc": (inspect.getdoc(method) or "")[:MAX_DOC] if method is not None else "",
        "detail": _detail(entrypoint),
        "async": inspect.iscoroutinefunction(method),
    }


def _signature(method: Any) -> str:
    """``(name, greeting=...)``: as a caller writes it, without ``self``.
    Default values are never announced (a default can be a password, and
    every peer on the broker reads announcements): ``...`` says there is one."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return "(...)"
    parameters = [
        p.replace(annotation=_as_written(p.annotation), default=_hidden(p.default))
        for p in list(signature.parameters.values())[1:]  # self
    ]
    returns = _as_written(signature.return_annotation)
    return str(signature.replace(parameters=parameters, return_annotation=returns))


class _Written:
    """An annotation kept as text (``from __future__ import annotations``),
    shown unquoted: ``(name: str)``, not ``(name: 'str')``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_DEFAULT_SHOWN = _Written("...")


def _hidden(default: Any) -> Any:
    return default if default is inspect.Parameter.empty else _DEFAULT_SHOWN


def _as_written(annotation: Any) -> Any:
    return _Written(annotation) if isinstance(annotation, str) else annotation


def _detail(entrypoint: Any) -> str:
    """What the entrypoint listens to, in a few words."""
    kind = entrypoint_kind(entrypoint)
    if kind == "http":
        return f"{entrypoint.method} {entrypoint.url}"
    if kind == "event_handler":
        return f"{entrypoint.source_service}.{entrypoint.event_type} ({entrypoint.handler_type})"
    if kind == "timer":
        return f"every {entrypoint.interval:g} s"
    if kind == "cron":
        return _cron_detail(entrypoint)
    if kind == "consume":
        queue = entrypoint.queue
        return str(getattr(queue, "name", queue))
    return ""


def _cron_detail(entrypoint: Any) -> str:
    """``*/5 * * * * (UTC, one instance)``: the expression as written."""
    tz = entrypoint.tz
    zone = getattr(tz, "key", None) or str(tz)
    runs_on = "one instance" if entrypoint.singleton else "every instance"
    return f"{entrypoint.expression} ({zone}, {runs_on})"
