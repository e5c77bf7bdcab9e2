"""nameko's exception classes and the error format that travels in RPC replies.

An exception crosses the wire as a dict of four keys (``exc_type``,
``exc_path``, ``exc_args``, ``value``) whose values are all made of strings,
lists and dicts, so the error itself can never make a reply unserialisable.
On the receiving side only classes in `registry` are rebuilt; anything else
becomes a `RemoteError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = [
    "BadRequest",
    "CommandError",
    "ConfigurationError",
    "ConnectionNotFound",
    "ContainerBeingKilled",
    "DeadlineExceeded",
    "DeliveryLimitExceeded",
    "ExtensionNotFound",
    "IncorrectSignature",
    "MalformedRequest",
    "MessageTooLarge",
    "MethodNotFound",
    "Overloaded",
    "RemoteError",
    "ReplyQueueExpiredWithPendingReplies",
    "RpcTimeout",
    "SubscriptionRefused",
    "UnknownService",
    "UnserializableValueError",
    "deserialize",
    "deserialize_to_instance",
    "get_module_path",
    "registry",
    "safe_for_serialization",
    "serialize",
]

ExcType = TypeVar("ExcType", bound=type)

#: ``"module.ClassName"`` -> exception class rebuilt as itself by `deserialize`.
registry: dict[str, type] = {}


def get_module_path(exc_type: type) -> str:
    """``"<module>.<ClassName>"`` for a class (``builtins.ValueError`` for built-ins)."""
    module = inspect.getmodule(exc_type)
    # Classes whose module is not importable (made on the fly) have no module
    # object; their ``__module__`` string is the best name we have.
    module_name = module.__name__ if module is not None else exc_type.__module__
    return f"{module_name}.{exc_type.__name__}"


def safe_for_serialization(value: Any) -> Any:
    """``value`` turned into strings, lists and dicts only.

    Strings stay as they are, dicts are converted key by key, other iterables
    become lists (so ``bytes`` become lists of stringified ints) and anything
    else becomes its ``str()``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {
            safe_for_serialization(key): safe_for_serialization(item) for key, item in value.items()
        }
    if isinstance(value, Iterable):
        try:
            return [safe_for_serialization(item) for item in value]
        except Exception:  # an iterable that fails to iterate is shown as text
            pass
    try:
        return str(value)
    except Exception:
        return "[__unicode__ failed]"


def serialize(exc: BaseException) -> dict[str, Any]:
    """The wire form of ``exc`` (key order as nameko emits it)."""
    return {
        "exc_type": type(exc).__name__,
        "exc_path": get_module_path(type(exc)),
        "exc_args": [safe_for_serialization(arg) for arg in exc.args],
        "value": safe_for_serialization(exc),
    }


def deserialize(data: dict[str, Any]) -> BaseException:
    """The exception described by a `serialize` dict.

    Registered classes are rebuilt from ``exc_args``; everything else (and,
    unlike nameko, a registered class whose constructor rejects the args, or a
    dict without ``exc_path``) becomes a `RemoteError`, so a caller always gets
    an exception rather than a crash in the reply path.
    """
    path = data.get("exc_path")
    exc_type = registry.get(path) if isinstance(path, str) else None
    if exc_type is not None:
        try:
            return exc_type(*data.get("exc_args", ()))
        except Exception:
            pass
    return RemoteError(exc_type=data.get("exc_type"), value=data.get("value"))


def deserialize_to_instance(exc_type: ExcType) -> ExcType:
    """Class decorator: have `deserialize` rebuild ``exc_type`` as itself."""
    registry[get_module_path(exc_type)] = exc_type
    return exc_type


class ExtensionNotFound(AttributeError):
    """A testing helper could not find the requested extension."""


class RpcTimeout(Exception):
    """A standalone RPC call got no reply in time; ``args == (timeout,)``."""


@deserialize_to_instance
class DeadlineExceeded(RpcTimeout):
    """A call's deadline passed (shimeji): the service did not start a request
    that reached a worker after it, or a nested call had no budget left to
    be sent with. An `RpcTimeout`, so code catching timeouts catches it."""


@deserialize_to_instance
class DeliveryLimitExceeded(Exception):
    """A message was delivered more times than ``DELIVERY_LIMIT`` allows (it
    crashed or killed its worker each time) and was dead-lettered instead of
    run again (shimeji). An RPC caller still waiting gets it as the reply."""


class ReplyQueueExpiredWithPendingReplies(Exception):
    """The caller's reply queue vanished (deleted, or expired while the
    connection was down) while this call waited for its reply, so the reply
    may be lost: the call ends at once instead of waiting for its timeout.
    The request may have run; calls made afterwards use the re-created
    queue (nameko 3's name)."""


class ContainerBeingKilled(Exception):
    """A worker was requested while its container is being killed."""


class RemoteError(Exception):
    """An exception raised by a remote service whose class is not registered."""

    def __init__(self, exc_type: str | None = None, value: Any = "") -> None:
        self.exc_type = exc_type
        self.value = value
        super().__init__(f"{exc_type} {value}")


class BadRequest(Exception):
    """The request itself was at fault (HTTP 400)."""


@deserialize_to_instance
class MalformedRequest(BadRequest):
    """The request message lacks the RPC envelope's keys."""


@deserialize_to_instance
class MethodNotFound(BadRequest):
    """The target service has no such RPC method."""


@deserialize_to_instance
class IncorrectSignature(BadRequest):
    """The arguments do not fit the method's signature."""


class UnknownService(Exception):
    """No queue is bound for the target service."""

    def __init__(self, service_name: str) -> None:
        self._service_name = service_name
        super().__init__(service_name)

    def __str__(self) -> str:
        return f"Unknown service `{self._service_name}`"


class UnserializableValueError(Exception):
    """A result could not be serialised; only its repr is kept (``args == ()``)."""

    def __init__(self, value: Any) -> None:
        try:
            self.repr_value = repr(value)
        except Exception:
            self.repr_value = "[__repr__ failed]"
        super().__init__()

    def __str__(self) -> str:
        return f"Unserializable value: `{self.repr_value}`"


@deserialize_to_instance
class MessageTooLarge(Exception):
    """A message body is larger than the maximum message size (``MAX_MESSAGE_SIZE``
    in config, or the broker's own limit). Not in nameko: there an oversize
    message closed the publishing channel.

    Raised where the message is published (a request at the caller, an event
    at the dispatcher); an RPC result too large to send reaches the caller as
    this error in place of the reply."""


class Overloaded(Exception):
    """A worker was refused because the container's queue of waiting workers is
    full (``spawn_worker(..., max_pending=N)``). Not in nameko, which queued
    without bound; HTTP entrypoints answer it with 503 and ``Retry-After``."""


class ConfigurationError(Exception):
    """The configuration or a service definition is invalid."""


class CommandError(Exception):
    """A CLI command could not run."""


class ConnectionNotFound(BadRequest):
    """No websocket connection has the given id."""


class SubscriptionRefused(BadRequest):
    """A WebSocket hub subscription over a cap: the socket already holds
    ``WEB_WEBSOCKET_MAX_SUBSCRIPTIONS`` channels, or the channel name is longer
    than ``WEB_WEBSOCKET_MAX_CHANNEL_LENGTH``. Not in nameko, which had no caps;
    the socket stays open and keeps its other subscriptions."""
