"""Take one message from a queue, for the ``get_message_from_queue`` fixture.

The Broker seam has no ``basic.get``; a consumer with a prefetch of one does
the same job: the broker sends at most one message, which is acked (or given
back) and the consumer closed. The queue is not declared: fetching from a
queue that does not exist raises the seam's `NotFound`, as ``basic.get`` would.
"""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Iterable
from typing import Any

from nameko._broker.base import Broker, Delivery
from nameko._concurrency import OneShot
from nameko._protocol import codecs

__all__ = ["Message", "get_message"]

#: how long a non-blocking get waits: once the broker confirmed the consumer
#: it sends a ready message straight away, so a short wait means "empty"
NONBLOCK_GRACE = 0.2


class Message:
    """What kombu's Message offered tests: ``body``, ``payload``, ``headers``,
    ``properties``, ``delivery_info``, ``content_type``, ``content_encoding``."""

    def __init__(self, delivery: Delivery, accept: Iterable[str] | None = None) -> None:
        props = delivery.properties
        self.body = delivery.body
        self.headers = dict(props.headers or {})
        self.properties = {
            f.name: getattr(props, f.name)
            for f in dataclasses.fields(props)
            if f.name != "headers" and getattr(props, f.name) is not None
        }
        self.content_type = props.content_type
        self.content_encoding = props.content_encoding
        self.delivery_info = {
            "exchange": delivery.exchange,
            "routing_key": delivery.routing_key,
            "redelivered": delivery.redelivered,
            "delivery_tag": delivery.delivery_tag,
        }
        self._accept = None if accept is None else list(accept)

    def decode(self) -> Any:
        """The body decoded by its content type (refused if not in ``accept``)."""
        return codecs.decode(self.body, self.content_type, self.content_encoding, self._accept)

    @property
    def payload(self) -> Any:
        return self.decode()

    def __repr__(self) -> str:
        return f"<Message {self.delivery_info['routing_key']!r} {self.content_type}>"


def get_message(
    broker: Broker,
    queue_name: str,
    ack: bool = True,
    block: bool = True,
    timeout: float | None = 1,
    accept: Iterable[str] | None = None,
) -> Message:
    """One message from ``queue_name``; `queue.Empty` when none comes in time.

    ``ack=False`` leaves the message in the queue (it is given back, so it
    comes again with ``redelivered`` set)."""
    got: OneShot[Delivery] = OneShot()
    consumer = broker.consume(queue_name, got.send, prefetch=1)
    try:
        if not got.wait(timeout if block else NONBLOCK_GRACE):
            raise queue.Empty(f"no message in queue {queue_name!r}")
        consumer.cancel()  # nothing more is sent; the one we hold can still be acked
        delivery = got.get()
        if ack:
            delivery.ack()
    finally:
        consumer.close()  # an unsettled delivery goes back to the queue
    return Message(delivery, accept)
