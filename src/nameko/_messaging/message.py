"""The message object extensions get: a kombu-``Message`` look-alike over a `Delivery`.

nameko 2.x handed its entrypoints kombu ``Message`` objects, and extensions
written against it (nameko-amqp-retry, tracing, dead-lettering helpers) read
and change them: ``message.headers[...] = ...``, ``message.properties.copy()``,
``message.delivery_info['routing_key']``, ``message.ack()``. Every consuming
path here (``@consume``, ``@event_handler``, ``@rpc``, the 2.x
``QueueConsumer`` and ``nameko.amqp.consume.Consumer``) wraps its deliveries
in this one class, so those extensions see the same thing everywhere.

Kept cheap for the hot path: nothing is copied or decoded until asked for.
``headers`` is a mutable copy made on first use (the delivery's own mapping
may be shared with the broker), and ``properties['application_headers']`` is
that same dict, so a change made through one is seen through the other (an
extension that republishes ``properties`` carries its header changes along).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from nameko._broker.base import Delivery, Properties
from nameko._protocol import codecs
from nameko._protocol.deadlines import DEADLINE_HEADER
from nameko._protocol.retries import deliveries_of
from nameko._runtime.worker import SENT_AT_KEY

__all__ = ["UNDECODABLE", "Message", "decode_delivery", "payload_or_reject", "with_sent_at"]

UNDECODABLE = object()  # what `payload_or_reject` returns for a message it rejected

_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)

_UNDECODED = object()

# the ``compression`` header kombu sets -> how to undo it
_DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "application/x-gzip": zlib.decompress,
    "application/x-bz2": bz2.decompress,
    "application/x-lzma": lzma.decompress,
}


def decode_delivery(delivery: Delivery, accept: Iterable[str] | None) -> Any:
    """The body of a delivery, decompressed and decoded (raises on failure)."""
    props = delivery.properties
    body = delivery.body
    compression = (props.headers or {}).get("compression")
    if compression:
        body = _DECOMPRESS[compression](body)
    return codecs.decode(body, props.content_type, props.content_encoding, accept)


def with_sent_at(context_data: dict[str, Any], message: Any) -> dict[str, Any]:
    """``context_data`` plus the message's AMQP ``timestamp`` under
    `SENT_AT_KEY` (queue-wait metrics), when it has one (a kombu message
    from a 2.x extension's own consumer does not count)."""
    delivery = getattr(message, "delivery", None)
    if delivery is not None:
        sent_at = delivery.properties.timestamp
        if sent_at is not None:
            context_data[SENT_AT_KEY] = sent_at
    return context_data


class Message:
    """A delivered message, read and settled the way kombu's ``Message`` is."""

    __slots__ = ("delivery", "accept", "consumer_tag", "_headers", "_properties", "_payload")

    def __init__(
        self,
        delivery: Delivery,
        accept: Iterable[str] | None = None,
        consumer_tag: str | None = None,
    ) -> None:
        self.delivery = delivery
        self.accept = accept
        self.consumer_tag = consumer_tag
        self._headers: dict[str, Any] | None = None
        self._properties: dict[str, Any] | None = None
        self._payload: Any = _UNDECODED

    # -- what kombu's Message offers -------------------------------------------

    @property
    def body(self) -> bytes:
        return self.delivery.body

    @property
    def headers(self) -> dict[str, Any]:
        """The application headers: a dict of our own, mutations are kept."""
        headers = self._headers
        if headers is None:
            headers = self._headers = dict(self.delivery.properties.headers or {})
        return headers

    @property
    def properties(self) -> dict[str, Any]:
        """The set AMQP properties by kombu's names; ``application_headers``
        is `headers` itself."""
        properties = self._properties
        if properties is None:
            properties = self._properties = _properties_dict(self.delivery.properties)
            properties["application_headers"] = self.headers
        return properties

    @property
    def delivery_info(self) -> dict[str, Any]:
        delivery = self.delivery
        info = {
            "exchange": delivery.exchange,
            "routing_key": delivery.routing_key,
            "redelivered": self.redelivered,
            "delivery_tag": delivery.delivery_tag,
        }
        if self.consumer_tag is not None:
            info["consumer_tag"] = self.consumer_tag
        return info

    @property
    def content_type(self) -> str | None:
        return self.delivery.properties.content_type

    @property
    def content_encoding(self) -> str | None:
        return self.delivery.properties.content_encoding

    @property
    def delivery_tag(self) -> int:
        return self.delivery.delivery_tag

    @property
    def payload(self) -> Any:
        """The decoded body (decoded once; raises if it can't be decoded)."""
        if self._payload is _UNDECODED:
            self._payload = decode_delivery(self.delivery, self.accept)
        return self._payload

    def decode(self) -> Any:
        return self.payload

    @property
    def acknowledged(self) -> bool:
        """True once acked, rejected or requeued (kombu's meaning)."""
        return self.delivery.settled

    def ack(self) -> bool:
        """Acknowledge; a no-op (False) when settled already or the channel is gone."""
        return self.delivery.ack()

    def reject(self, requeue: bool = False) -> bool:
        return self.delivery.reject(requeue=requeue)

    def requeue(self) -> bool:
        return self.delivery.reject(requeue=True)

    # -- shortcuts of ours -------------------------------------------------------

    @property
    def routing_key(self) -> str:
        return self.delivery.routing_key

    @property
    def redelivered(self) -> bool:
        """Delivered before: the broker says so, or (shimeji) the message is
        a copy published again to count its deliveries (see
        `nameko._reliability`), which the broker can't flag."""
        delivery = self.delivery
        return delivery.redelivered or deliveries_of(delivery.properties.headers, False) > 1

    def set_payload(self, payload: Any) -> None:
        """Record a body decoded elsewhere, so `payload` won't decode it again."""
        self._payload = payload

    def __repr__(self) -> str:
        delivery = self.delivery
        return (
            f"<Message {delivery.exchange!r}/{delivery.routing_key!r} "
            f"tag={delivery.delivery_tag} acknowledged={delivery.settled}>"
        )


def _properties_dict(properties: Properties) -> dict[str, Any]:
    values = {name: getattr(properties, name) for name in _PROPERTY_NAMES}
    if DEADLINE_HEADER in (properties.headers or {}):
        # The expiration our deadline put on the request is not shown: nameko
        # never set one, and 2.x extensions that republish a request pass
        # ``expiration=`` of their own beside ``**message.properties``
        # (nameko-amqp-retry); the deadline header still travels.
        values.pop("expiration", None)
    return {name: value for name, value in values.items() if value is not None}


def payload_or_reject(message: Message, log: Any) -> Any:
    """The decoded body, or `UNDECODABLE` once a message that cannot be
    decoded has been rejected (never requeued: it would come back forever)
    and logged on ``log``."""
    try:
        return message.payload
    except Exception as exc:
        log.error("rejected undecodable message (routing key %r): %s", message.routing_key, exc)
        message.reject(requeue=False)
        return UNDECODABLE
