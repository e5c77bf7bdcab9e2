"""Taking a message out of the normal flow: retry it later, count its
deliveries, or dead-letter it (the wire format: `nameko._protocol.retries`).

Every operation publishes a confirmed copy first; the caller settles the
original only after that returned, so a failure between the two leaves a
duplicate, never a loss. Confirmed publishes wait: call these from a worker
or managed thread, never from the broker's dispatch thread.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, replace
from typing import Any

from nameko._broker.base import (
    Binding,
    Broker,
    Delivery,
    Exchange,
    Properties,
    Queue,
    Unroutable,
)
from nameko._messaging.publish import publish
from nameko._protocol import retries as wire
from nameko.exceptions import get_module_path

__all__ = ["Home", "count_delivery", "dead_letter", "retry_later"]

_log = logging.getLogger("nameko.reliability")

RECOUNT_DELAY = 1.0  # seconds before a counted redelivery comes back (see count_delivery)


@dataclass(frozen=True)
class Home:
    """Where a copy of a message must be published to reach the same
    consumer again: the consumer's queue by name through the default
    exchange, or (RPC) the RPC exchange with the request's routing key, so
    that the method is found again and any instance of the service can take
    it."""

    exchange: str
    routing_key: str


def _copy(delivery: Delivery, **headers: Any) -> Properties:
    """The delivery's properties for a copy: RabbitMQ's dead-lettering
    records and our own routing header dropped (the attempt count says it
    all), no expiration (a deadline still travels in its header)."""
    kept = {k: v for k, v in (delivery.properties.headers or {}).items() if not _bookkeeping(k)}
    kept.update(headers)
    return replace(delivery.properties, headers=kept, expiration=None)


def _bookkeeping(name: str) -> bool:
    return name in (wire.DELAY_HEADER, "x-death") or name.startswith(
        ("x-first-death-", "x-last-death-")
    )


def retry_later(
    broker: Broker, delivery: Delivery, home: Home, delay: float, attempt: int, error: BaseException
) -> float:
    """Publish attempt ``attempt + 1`` of ``delivery`` to reach ``home`` in
    about ``delay`` seconds; returns the delay used (rounded to the grid)."""
    headers = {wire.ATTEMPT_HEADER: attempt + 1, wire.LAST_ERROR_HEADER: wire.error_text(error)}
    return _publish_later(broker, delivery, home, delay, headers)


def count_delivery(broker: Broker, delivery: Delivery, home: Home, deliveries: int) -> None:
    """Publish ``delivery`` again with its delivery count (a redelivered
    message on a classic queue, which counts nothing itself).

    Through a delay queue, not straight back: the original is acked only
    once the copy is confirmed, and RabbitMQ may deliver a copy before it
    confirms it. A copy that ran at once and killed its process again would
    leave the original unacked, back with its old count, for ever (seen:
    8 runs for a limit of 3). `RECOUNT_DELAY` is the margin for the confirm
    and the ack; a redelivered message is that much later."""
    _publish_later(broker, delivery, home, RECOUNT_DELAY, {wire.DELIVERIES_HEADER: deliveries})


def _publish_later(
    broker: Broker, delivery: Delivery, home: Home, delay: float, headers: dict[str, Any]
) -> float:
    """A confirmed copy of ``delivery``, with ``headers`` added, that reaches
    ``home`` after about ``delay`` seconds (a delay queue: see `wire`)."""
    delay_ms = wire.round_delay(delay)
    queue = wire.delay_queue_name(delay_ms, home.exchange)
    properties = _copy(delivery, **headers, **{wire.DELAY_HEADER: queue})
    args = (wire.RETRY_EXCHANGE, home.routing_key, delivery.body, properties)
    fresh = _declare_delay_queue(broker, queue, delay_ms, home.exchange)
    try:
        publish(broker, *args, mandatory=True)
    except Unroutable:
        if fresh:
            raise
        # declared earlier on this connection, deleted since: once more
        _declare_delay_queue(broker, queue, delay_ms, home.exchange, again=True)
        publish(broker, *args, mandatory=True)
    return delay_ms / 1000.0


# delay queues declared per connection: a burst of retries (the redeliveries
# after a process died) declares each once, not once per message
_declared: weakref.WeakKeyDictionary[Broker, set[str]] = weakref.WeakKeyDictionary()


def _declare_delay_queue(
    broker: Broker, queue: str, delay_ms: int, target: str, again: bool = False
) -> bool:
    """Declare ``queue`` unless this connection did; True if it did now."""
    known = _declared.setdefault(broker, set())
    if queue in known and not again:
        return False
    broker.declare(
        [
            Exchange(wire.RETRY_EXCHANGE, type="headers", durable=True),
            Queue(queue, arguments={"x-message-ttl": delay_ms, "x-dead-letter-exchange": target}),
            Binding(queue, wire.RETRY_EXCHANGE, "", {"x-match": "all", wire.DELAY_HEADER: queue}),
        ]
    )
    known.add(queue)
    return True


def dead_letter(
    broker: Broker,
    delivery: Delivery,
    home: Home,
    entrypoint: tuple[str, str],
    reason: str,
    error: BaseException | None,
) -> str:
    """Publish ``delivery`` to its entrypoint's dead-letter queue, saying
    why and where it came from; returns the queue's name."""
    service, method = entrypoint
    queue = wire.dead_letter_queue_name(service, method)
    broker.declare([Queue(queue)])
    headers: dict[str, Any] = {
        wire.REASON_HEADER: reason,
        wire.ENTRYPOINT_HEADER: f"{service}.{method}",
        wire.ORIGIN_EXCHANGE_HEADER: home.exchange,
        wire.ORIGIN_ROUTING_KEY_HEADER: home.routing_key,
        wire.FAILED_AT_HEADER: int(time.time() * 1000),
    }
    if error is not None:
        headers[wire.ERROR_TYPE_HEADER] = type(error).__name__
        headers[wire.ERROR_PATH_HEADER] = get_module_path(type(error))
        headers[wire.ERROR_HEADER] = wire.error_text(error)
    publish(broker, "", queue, delivery.body, _copy(delivery, **headers))
    _log.warning(
        "dead-lettered a message for %s.%s to %r (%s%s)",
        service,
        method,
        queue,
        reason,
        f": {wire.error_text(error)}" if error is not None else "",
    )
    return queue
