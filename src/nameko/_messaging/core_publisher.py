"""The core publisher: nameko's ``nameko.amqp.publish.Publisher`` (SPEC 1.8),
re-exported there; the `Publisher` and `EventDispatcher` dependencies and
the standalone event dispatcher publish through it.

`Publisher` keeps nameko's constructor and per-call semantics: class-level
defaults, constructor arguments that override them, ``publish(payload,
**kwargs)`` where every option can be overridden per call, headers merged
from the instance, the call's ``headers`` and ``extra_headers`` (later
wins), and ``declare`` extending the instance's list.

It publishes through our `Broker` seam, not kombu: on the connection it is
given (``broker``) or on one from the process-wide pool
(`nameko._messaging.pool`). Exchanges and queues are described as
`nameko._messaging.entities` accepts them. Entities in ``declare`` are
declared once per connection; if the broker then reports a missing exchange
(an auto-delete exchange that went away) they are declared again and the
publish is retried once.

Deliberate differences from nameko 2.14:

* ``transport_options`` is copied per instance; nameko's class-level dict is
  mutated by every publish (SPEC 13.23).
* ``retry_policy`` is accepted, but a retried publish follows our fixed
  back-off (`nameko._messaging.publish`); ``retry=False`` disables it.
* kombu publish arguments with no meaning here (``immediate``, ``timeout``,
  ``confirm_timeout``) are accepted and ignored; unknown ones raise
  `TypeError` instead of travelling as bogus message properties.
"""

from __future__ import annotations

import bz2
import lzma
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from nameko._broker.base import Broker, ConnectionLost, Entity, NotFound, Properties, Unroutable
from nameko._concurrency import OneShot
from nameko._messaging.entities import declare_once, entities_of, exchange_name, forget_declared
from nameko._messaging.pool import get_producer
from nameko._messaging.publish import publish as publish_with_retry
from nameko._protocol import codecs
from nameko.constants import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    NON_PERSISTENT,
    PERSISTENT,
)

__all__ = ["COMPRESSIONS", "ConfirmWait", "Publisher", "UndeliverableMessage", "build_message"]


class UndeliverableMessage(Exception):
    """A ``mandatory`` message could not be routed to any queue."""


_OPTIONS = (
    "use_confirms",
    "delivery_mode",
    "mandatory",
    "priority",
    "expiration",
    "serializer",
    "compression",
    "retry",
    "retry_policy",
)
_PROPERTY_ARGS = (
    "correlation_id",
    "reply_to",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)
_IGNORED_ARGS = ("immediate", "timeout", "confirm_timeout")
_DELIVERY_MODES = {"transient": NON_PERSISTENT, "persistent": PERSISTENT}

# kombu's compression names and the content types it puts in the
# ``compression`` header (consumers decompress by that header)
COMPRESSIONS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "zlib": ("application/x-gzip", zlib.compress),
    "gzip": ("application/x-gzip", zlib.compress),
    "bzip2": ("application/x-bz2", bz2.compress),
    "bzip": ("application/x-bz2", bz2.compress),
    "lzma": ("application/x-lzma", lzma.compress),
    "xz": ("application/x-lzma", lzma.compress),
}


@dataclass
class _Message:
    exchange: str
    routing_key: str
    body: bytes
    properties: Properties


class Publisher:
    """Publishes messages with nameko's defaults: persistent, confirmed,
    retried, serialized as json unless told otherwise.

    Beyond nameko's arguments it takes ``broker``: a `Broker` (or a function
    returning one) to publish on instead of the pooled connections; service
    dependencies use it to publish on their container's connection.
    """

    use_confirms = True
    transport_options: dict[str, Any] = dict(DEFAULT_TRANSPORT_OPTIONS)
    delivery_mode: int | str = PERSISTENT
    mandatory = False
    priority = 0
    expiration: float | None = None
    serializer = DEFAULT_SERIALIZER
    compression: str | None = None
    retry = True
    retry_policy: dict[str, Any] = dict(DEFAULT_RETRY_POLICY)
    declare: list[Any] = []

    def __init__(
        self,
        amqp_uri: str,
        use_confirms: bool | None = None,
        serializer: str | None = None,
        compression: str | None = None,
        delivery_mode: int | str | None = None,
        mandatory: bool | None = None,
        priority: int | None = None,
        expiration: float | None = None,
        declare: Iterable[Any] | None = None,
        retry: bool | None = None,
        retry_policy: dict[str, Any] | None = None,
        ssl: Any = None,
        login_method: str | None = None,
        **publish_kwargs: Any,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.ssl = ssl
        self.login_method = login_method
        overrides = {
            "use_confirms": use_confirms,
            "serializer": serializer,
            "compression": compression,
            "delivery_mode": delivery_mode,
            "mandatory": mandatory,
            "priority": priority,
            "expiration": expiration,
            "retry": retry,
            "retry_policy": retry_policy,
        }
        for name, value in overrides.items():
            if value is not None:
                setattr(self, name, value)
        self.transport_options = dict(self.transport_options)
        self.declare = list(self.declare if declare is None else declare)
        self._declare_cache: tuple[tuple[int, ...] | None, list[Entity], list[str]] = (None, [], [])
        self.broker: Broker | Callable[[], Broker] | None = publish_kwargs.pop("broker", None)
        self.publish_kwargs = publish_kwargs

    def publish(self, payload: Any, **kwargs: Any) -> None:
        """Publish ``payload``; raises `UndeliverableMessage` when a
        ``mandatory`` message is unroutable (needs confirms)."""
        self._publish_now(*self._prepare(payload, kwargs))

    def publish_pipelined(self, payload: Any, **kwargs: Any) -> ConfirmWait:
        """Publish ``payload`` without waiting for its confirm; returns ``wait()``.

        ``wait()`` returns once the broker confirmed the message and raises
        what `publish` would have raised. A connection lost (or an exchange
        gone) before the confirm is published again then, as `publish` does: the
        message may arrive twice, never not at all without an error. A
        ``mandatory`` or unconfirmed publish is done in full at once (an
        unroutable message must raise in the caller), and ``wait`` is a no-op.
        """
        message, declare, options = self._prepare(payload, kwargs)
        if options["mandatory"] or not options["use_confirms"]:
            self._publish_now(message, declare, options)
            return ConfirmWait(None, _nothing_to_wait_for, False)
        with self._connection() as broker:
            declare_once(broker, *declare)
            try:
                outcome = broker.publish_async(
                    message.exchange, message.routing_key, message.body, message.properties
                )
            except ConnectionLost:  # reconnecting: the retrying path waits for it
                if not options["retry"]:
                    raise
                self._send(broker, message, declare, options)
                return ConfirmWait(None, _nothing_to_wait_for, False)
        return ConfirmWait(
            outcome, partial(self._publish_now, message, declare, options), options["retry"]
        )

    def _publish_now(
        self, message: _Message, declare: tuple[list[Entity], list[str]], options: dict[str, Any]
    ) -> None:
        """The full, confirmed (when asked) and retried publish."""
        with self._connection() as broker:
            self._send(broker, message, declare, options)

    def _prepare(
        self, payload: Any, kwargs: dict[str, Any]
    ) -> tuple[_Message, tuple[list[Entity], list[str]], dict[str, Any]]:
        """The message, the declarations and the options of one publish call."""
        headers = {
            **(self.publish_kwargs.get("headers") or {}),
            **(kwargs.pop("headers", None) or {}),
            **(kwargs.pop("extra_headers", None) or {}),
        }
        options = {name: kwargs.pop(name, getattr(self, name)) for name in _OPTIONS}
        declare = self._declarations(kwargs.pop("declare", None))
        rest = {key: value for key, value in self.publish_kwargs.items() if key != "headers"}
        rest.update(kwargs)
        message = build_message(payload, headers, options, rest)
        if options["mandatory"] and not options["use_confirms"]:
            warnings.warn(
                "Mandatory delivery requested but publish confirms not enabled.",
                UserWarning,
                stacklevel=3,
            )
        return message, declare, options

    def _declarations(self, extra: Iterable[Any] | None) -> tuple[list[Entity], list[str]]:
        """Entities (and their cache keys) of the instance's ``declare`` list,
        converted once per list content, plus a call's own ``declare``."""
        ids = tuple(map(id, self.declare))  # the list holds them: ids stay unique
        if self._declare_cache[0] != ids:
            entities = entities_of(self.declare)
            self._declare_cache = (ids, entities, [repr(entity) for entity in entities])
        _, entities, keys = self._declare_cache
        if extra:
            more = entities_of(extra)
            return [*entities, *more], [*keys, *map(repr, more)]
        return entities, keys

    @contextmanager
    def _connection(self) -> Iterator[Broker]:
        if self.broker is None:
            with get_producer(
                self.amqp_uri, True, self.ssl, self.login_method, self.transport_options
            ) as broker:
                yield broker
        else:
            yield self.broker() if callable(self.broker) else self.broker

    def _send(
        self,
        broker: Broker,
        message: _Message,
        declare: tuple[list[Entity], list[str]],
        options: dict[str, Any],
    ) -> None:
        declare_once(broker, *declare)
        try:
            try:
                _publish(broker, message, options)
            except NotFound:
                if not declare[0]:
                    raise
                # e.g. an auto-delete exchange went away since we declared it
                forget_declared(broker)
                declare_once(broker, *declare)
                _publish(broker, message, options)
        except Unroutable:
            raise UndeliverableMessage() from None


def _nothing_to_wait_for() -> None:
    pass


class ConfirmWait:
    """``wait()`` for one pipelined publish. ``outcome`` is the broker's
    confirm (None: nothing to wait for), so that an event loop can await it
    and call `settle` once it is there instead of blocking in ``wait()``."""

    __slots__ = ("outcome", "republish", "retry")

    def __init__(
        self, outcome: OneShot[None] | None, republish: Callable[[], None], retry: bool
    ) -> None:
        self.outcome, self.republish, self.retry = outcome, republish, retry

    def __call__(self) -> None:
        if self.outcome is not None:
            self.outcome.wait()
            self.settle(self.outcome.exception())

    def recovers(self, exc: BaseException) -> bool:
        """Whether publishing again (blocking: `republish`) is the answer to ``exc``."""
        return isinstance(exc, NotFound) or (isinstance(exc, ConnectionLost) and self.retry)

    def settle(self, exc: BaseException | None) -> None:
        """Act on the confirm's failure: publish again, or raise it."""
        if exc is None:
            return
        if self.recovers(exc):
            self.republish()
            return
        raise exc


def _publish(broker: Broker, message: _Message, options: dict[str, Any]) -> None:
    publish_with_retry(
        broker,
        message.exchange,
        message.routing_key,
        message.body,
        message.properties,
        mandatory=bool(options["mandatory"]),
        confirm=bool(options["use_confirms"]),
        retry=bool(options["retry"]),
    )


def build_message(
    payload: Any, headers: dict[str, Any], options: Mapping[str, Any], rest: dict[str, Any]
) -> _Message:
    """Body and properties for one publish, from nameko/kombu publish arguments."""
    exchange = exchange_name(rest.pop("exchange", None))
    routing_key = rest.pop("routing_key", None) or ""
    body, content_type, encoding = _body(payload, options["serializer"], rest)
    if options["compression"]:
        header, compress = COMPRESSIONS[options["compression"]]
        body = compress(body)
        headers["compression"] = header
    for name in _IGNORED_ARGS:
        rest.pop(name, None)
    extra = {name: rest.pop(name) for name in _PROPERTY_ARGS if name in rest}
    extra.setdefault("timestamp", int(time.time()))  # queue-wait metrics; peers ignore it
    if rest:
        raise TypeError(f"unexpected publish argument(s): {', '.join(sorted(rest))}")
    delivery_mode = options["delivery_mode"]
    expiration = options["expiration"]
    properties = Properties(
        content_type=content_type,
        content_encoding=encoding,
        headers=headers,
        delivery_mode=_DELIVERY_MODES.get(delivery_mode, delivery_mode),
        priority=options["priority"],
        expiration=None if expiration is None else str(int(expiration * 1000)),
        **extra,
    )
    return _Message(exchange, routing_key, body, properties)


def _body(payload: Any, serializer: str, rest: dict[str, Any]) -> tuple[bytes, str, str]:
    content_type = rest.pop("content_type", None)
    encoding = rest.pop("content_encoding", None)
    if content_type is None:
        return codecs.encode(payload, serializer)
    # kombu: with an explicit content type the payload is sent as it is
    if isinstance(payload, str):
        encoding = encoding or "utf-8"
        return payload.encode(encoding), content_type, encoding
    return bytes(payload), content_type, encoding or "binary"
