"""Exchange and queue descriptions translated to broker entities, and
declaring them once per connection.

nameko users describe exchanges and queues with kombu's ``Exchange`` and
``Queue``; we publish and consume through our `Broker` seam, not kombu. So
every place that takes such a description (the core publisher's
``declare``, ``exchange`` and the `Publisher`/``@consume`` extensions) goes
through here:

* Exchanges and queues may be given as kombu ``Exchange``/``Queue`` objects
  (read by duck typing, kombu is not a dependency), as our
  `nameko._broker.base` entities, or an exchange by name.
* Entities are declared once per connection (cached, like kombu's
  ``maybe_declare``); `forget_declared` drops a connection's cache so they
  are declared again, e.g. after the broker reported an auto-delete
  exchange missing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from nameko._broker.base import Binding, Broker, Entity, Exchange, Queue
from nameko._concurrency import Lock

__all__ = [
    "as_exchange",
    "as_queue",
    "declare_once",
    "entities_of",
    "exchange_name",
    "forget_declared",
    "queue_entities",
]


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
    links: list[tuple[Any, str | None, Mapping[str, Any] | None]]
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
    """Forget what this connection declared: the next `declare_once` declares
    everything again."""
    with _declared_lock:
        _declared.pop(broker, None)
