"""Publishing messages the way nameko's ``nameko.amqp.publish`` does (SPEC 1.8).

`Publisher` keeps nameko's constructor and per-call semantics: class-level
defaults, constructor arguments that override them, ``publish(payload,
**kwargs)`` where every option can be overridden per call, headers merged
from the instance, the call's ``headers`` and ``extra_headers`` (later
wins), and ``declare`` extending the instance's list.

It publishes through our `Broker` seam, not kombu:

* `get_connection` and `get_producer` are context managers that yield a
  shimeji broker connection (`nameko._broker.base.Broker`) from a small
  process-wide pool, not kombu ``Connection``/``Producer`` objects. Code that
  only passes them to nameko's own helpers keeps working; code that calls
  kombu methods on them does not.
* Exchanges and queues may be given as kombu ``Exchange``/``Queue`` objects
  (read by duck typing, kombu is not a dependency), as our
  `nameko._broker.base` entities, or an exchange by name.
* Entities in ``declare`` are declared once per connection (cached, like
  kombu's ``maybe_declare``); if the broker then reports a missing exchange
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
import warnings
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nameko._broker import connect
from nameko._broker.base import (
    Binding,
    Broker,
    Entity,
    Exchange,
    NotFound,
    Properties,
    Queue,
    Unroutable,
)
from nameko._concurrency import Lock
from nameko._messaging.publish import publish as publish_with_retry
from nameko._protocol import codecs
from nameko.constants import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    NON_PERSISTENT,
    PERSISTENT,
)

__all__ = ["Publisher", "UndeliverableMessage", "get_connection", "get_producer"]


class UndeliverableMessage(Exception):
    """A ``mandatory`` message could not be routed to any queue."""


# -- pooled connections ------------------------------------------------------

MAX_IDLE_CONNECTIONS = 10  # per (uri, options); more are closed on release

_idle: dict[tuple[Any, ...], list[Broker]] = {}
_idle_lock = Lock()


@contextmanager
def get_connection(
    amqp_uri: str,
    ssl: Any = None,
    login_method: str | None = None,
    transport_options: Mapping[str, Any] | None = None,
) -> Iterator[Broker]:
    """A broker connection from the process-wide pool (a shimeji `Broker`,
    not a kombu ``Connection``); it goes back to the pool afterwards."""
    options = {
        "ssl": ssl,
        "login_method": login_method,
        "transport_options": dict(transport_options or DEFAULT_TRANSPORT_OPTIONS),
    }
    key = (amqp_uri, repr(sorted(options.items())))
    broker = _take_idle(key) or connect(amqp_uri, connection_name="nameko:publisher", **options)
    try:
        yield broker
    finally:
        _give_back(key, broker)


@contextmanager
def get_producer(
    amqp_uri: str,
    confirms: bool = True,
    ssl: Any = None,
    login_method: str | None = None,
    transport_options: Mapping[str, Any] | None = None,
) -> Iterator[Broker]:
    """Like `get_connection`: our broker takes ``confirm`` per publish, so the
    connection is the producer. ``confirms`` is accepted for compatibility."""
    with get_connection(amqp_uri, ssl, login_method, transport_options) as broker:
        yield broker


def _take_idle(key: tuple[Any, ...]) -> Broker | None:
    with _idle_lock:
        pool = _idle.get(key, [])
        while pool:
            broker = pool.pop()
            if broker.is_connected:
                return broker
            broker.close()
    return None


def _give_back(key: tuple[Any, ...], broker: Broker) -> None:
    with _idle_lock:
        pool = _idle.setdefault(key, [])
        if broker.is_connected and len(pool) < MAX_IDLE_CONNECTIONS:
            pool.append(broker)
            return
    broker.close()


# -- entity descriptions -------------------------------------------------------


def as_exchange(exchange: Any) -> Exchange | None:
    """Our `Exchange` for an exchange description: ours, a kombu-like object
    (``.name``, ``.type``, ``.durable``, ``.auto_delete``, ``.arguments``) or
    a name. The default exchange (``""``) and None give None."""
    if exchange is None:
        return None
    if isinstance(exchange, Exchange):
        return exchange if exchange.name else None
    if isinstance(exchange, str):
        return Exchange(exchange, type="direct") if exchange else None
    name = getattr(exchange, "name", "")
    if not name:
        return None
    return Exchange(
        name,
        type=getattr(exchange, "type", None) or "direct",  # kombu's default type
        durable=bool(getattr(exchange, "durable", True)),
        auto_delete=bool(getattr(exchange, "auto_delete", False)),
        arguments=dict(getattr(exchange, "arguments", None) or {}),
    )


def exchange_name(exchange: Any) -> str:
    """The name of an exchange description (``""``: the default exchange)."""
    if exchange is None or isinstance(exchange, str):
        return exchange or ""
    return getattr(exchange, "name", "") or ""


# kombu Queue attributes (seconds or counts) that become queue arguments
_QUEUE_ARGUMENT_ATTRS = (
    ("expires", "x-expires", 1000),
    ("message_ttl", "x-message-ttl", 1000),
    ("max_length", "x-max-length", 1),
    ("max_length_bytes", "x-max-length-bytes", 1),
    ("max_priority", "x-max-priority", 1),
)


def as_queue(queue: Any) -> Queue:
    """Our `Queue` for a queue description: ours, a name, or a kombu-like
    object (``.name``, ``.durable``, ``.exclusive``, ``.auto_delete``,
    ``.queue_arguments`` and kombu's ``expires``/``message_ttl``/... shortcuts)."""
    if isinstance(queue, Queue):
        return queue
    if isinstance(queue, str):
        return Queue(queue)
    arguments = dict(getattr(queue, "queue_arguments", None) or {})
    for attr, argument, scale in _QUEUE_ARGUMENT_ATTRS:
        value = getattr(queue, attr, None)
        if value is not None:
            arguments.setdefault(argument, int(value * scale))
    return Queue(
        queue.name,
        durable=bool(getattr(queue, "durable", True)),
        exclusive=bool(getattr(queue, "exclusive", False)),
        auto_delete=bool(getattr(queue, "auto_delete", False)),
        arguments=arguments,
    )


def _declares(exchange: Any) -> bool:
    # kombu's Exchange(no_declare=True): bind to it, never declare it
    return not getattr(exchange, "no_declare", False)


def queue_entities(
    queue: Any, exchange: Any = None, routing_key: str | None = None
) -> list[Entity]:
    """Everything to declare for a queue description: its exchange(s), the
    queue, its binding(s). For our `Queue` (which carries no binding) or a
    name, ``exchange`` and ``routing_key`` give the binding."""
    decl = as_queue(queue)
    if isinstance(queue, (Queue, str)):
        links = [(exchange, routing_key or "", {})]
    else:
        links = [
            (
                getattr(queue, "exchange", None),
                getattr(queue, "routing_key", ""),
                getattr(queue, "binding_arguments", None),
            )
        ] + [
            (b.exchange, b.routing_key, getattr(b, "arguments", None))
            for b in getattr(queue, "bindings", None) or ()
        ]
    entities: list[Entity] = []
    bindings: list[Entity] = []
    for link_exchange, key, arguments in links:
        target = as_exchange(link_exchange)
        if target is None:
            continue  # the default exchange routes by queue name already
        if _declares(link_exchange):
            entities.append(target)
        bindings.append(Binding(decl.name, target.name, key or "", dict(arguments or {})))
    return [*entities, decl, *bindings]


def entities_of(declare: Iterable[Any]) -> list[Entity]:
    """Broker entities for a ``declare`` list of exchange/queue descriptions."""
    entities: list[Entity] = []
    for item in declare:
        if isinstance(item, Binding):
            entities.append(item)
        elif isinstance(item, Queue) or hasattr(item, "queue_arguments"):
            entities.extend(queue_entities(item))
        elif (exchange := as_exchange(item)) is not None and _declares(item):
            entities.append(exchange)
    return entities


# -- declaring once per connection ----------------------------------------------

_declared: weakref.WeakKeyDictionary[Broker, set[str]] = weakref.WeakKeyDictionary()
_declared_lock = Lock()


def declare_once(broker: Broker, entities: Iterable[Entity], keys: Iterable[str] = ()) -> None:
    """Declare the entities this connection has not declared yet.

    ``keys`` are the entities' reprs when the caller has them already
    (computing them is most of the cost of a publish that declares nothing).
    """
    entities = list(entities)
    keys = list(keys) or [repr(entity) for entity in entities]
    with _declared_lock:
        done = _declared.setdefault(broker, set())
        todo = [
            (key, entity) for key, entity in zip(keys, entities, strict=True) if key not in done
        ]
    if todo:
        broker.declare([entity for _, entity in todo])
        with _declared_lock:
            _declared.setdefault(broker, set()).update(key for key, _ in todo)


def forget_declared(broker: Broker) -> None:
    with _declared_lock:
        _declared.pop(broker, None)


# -- the publisher ----------------------------------------------------------------

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
                stacklevel=2,
            )
        with self._connection() as broker:
            self._send(broker, message, declare, options)

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
    if rest:
        raise TypeError(f"unexpected publish argument(s): {', '.join(sorted(rest))}")
    delivery_mode = options["delivery_mode"]
    expiration = options["expiration"]
    properties = Properties(
        content_type=content_type,
        content_encoding=encoding,
        headers=headers,
        delivery_mode=_DELIVERY_MODES.get(delivery_mode, delivery_mode),  # type: ignore[arg-type]
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
