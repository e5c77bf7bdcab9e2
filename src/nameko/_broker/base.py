"""The Broker seam: the only thing the layers above know about a message broker.

A `Broker` is one client connection to an AMQP 0-9-1 style broker. Two
implementations exist: `memory` (in-process, for fast tests and the embedded
default) and `rabbit` (RabbitMQ over the network). Both pass the same contract
suite in ``tests/contract``, which is what makes the memory broker a verified
fake rather than a guess.

Threading contract (both implementations):

* Every method is safe to call from any thread.
* ``on_message`` callbacks run on the broker's own dispatch thread, one at a
  time per connection. They must not block: hand work to a pool. They may call
  ``Delivery.ack()``/``reject()``, ``publish`` with ``confirm=False``... but a
  confirmed ``publish`` from the dispatch thread raises ``BrokerError`` (it would
  wait for a confirm that thread itself has to read).
* ``Delivery.ack()``/``reject()`` may be called from any thread, exactly once;
  later calls are ignored. After the connection that delivered the message
  was lost they do nothing and return False: the broker has already
  requeued the message. They never raise.

Reconnection: a connection that drops is re-established with back-off.
Consumers are restored (their topology re-declared first); publishes that were
waiting for a confirm fail with `ConnectionLost` (their outcome is unknown).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nameko import exceptions
from nameko._concurrency import OneShot
from nameko.constants import DEFAULT_MAX_MESSAGE_SIZE

__all__ = [
    "Binding",
    "Broker",
    "BrokerClosed",
    "BrokerError",
    "BrokerRefused",
    "BrokerUnreachable",
    "ChannelError",
    "ConfirmLost",
    "ConnectionLost",
    "BrokerStats",
    "Consumer",
    "ConsumerStatus",
    "Delivery",
    "Entity",
    "Exchange",
    "MAX_HEADER_NESTING",
    "MessageTooLarge",
    "NotFound",
    "PreconditionFailed",
    "Properties",
    "PublishNacked",
    "PublishTimeout",
    "Queue",
    "Unroutable",
    "check_body_size",
    "check_name",
    "declares_queue",
    "report_queue_lost",
]

_log = logging.getLogger("nameko._broker")


# -- errors ----------------------------------------------------------------


class BrokerError(Exception):
    """Base of every error raised through the seam."""


class ConnectionLost(BrokerError, ConnectionError):
    """The connection dropped while the operation was under way.

    Also a builtin `ConnectionError`, so that callers can catch it without
    importing a private module."""


class ConfirmLost(ConnectionLost):
    """The publishing channel closed (the broker refused another message on
    it) before this publish was confirmed; the connection is still up. The
    message may or may not have been routed: publishing it again is safe
    wherever duplicates are (RPC replies and requests are)."""


class BrokerUnreachable(BrokerError, ConnectionError):
    """The first connection attempt failed (after the configured retries)."""


class BrokerRefused(BrokerUnreachable):
    """The broker turned the first connection down for good: a wrong login
    (``reply_code`` 403, ACCESS_REFUSED) or a missing vhost (530,
    NOT_ALLOWED). Built by `nameko._broker.refusal.refused_error`, which also
    makes it py-amqp's matching error when py-amqp is loaded."""

    reply_code: int = 403
    reply_text: str = ""


class BrokerClosed(BrokerError):
    """The broker connection was closed with `Broker.close`."""


class Unroutable(BrokerError):
    """A ``mandatory`` publish was returned by the broker (NO_ROUTE)."""

    def __init__(self, exchange: str, routing_key: str, reply_text: str = "NO_ROUTE"):
        super().__init__(f"{reply_text}: exchange={exchange!r} routing_key={routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key


class PublishNacked(BrokerError):
    """The broker refused responsibility for a published message."""


class MessageTooLarge(BrokerError, exceptions.MessageTooLarge):
    """A body over the connection's ``max_message_size``: refused before
    anything is sent, or by the broker (its own, lower, limit)."""


#: tables and arrays a header value may sit in, the header table counted. Real
#: headers use 2 or 3 (x-death is an array of tables) and RabbitMQ sets no
#: limit; the codec recurses once per level, so it must stop well before
#: Python's recursion limit. Deeper headers are refused when published and
#: rejected (undecodable) when delivered.
MAX_HEADER_NESTING = 64


def check_body_size(body: bytes, limit: int, exchange: str, routing_key: str) -> None:
    """Raise `MessageTooLarge` for a body the broker would refuse: RabbitMQ
    closes the publishing channel for it, failing every publish in flight."""
    if len(body) > limit:
        raise MessageTooLarge(
            f"a message of {len(body)} bytes to {exchange!r}/{routing_key!r} is larger than "
            f"the maximum message size ({limit} bytes, MAX_MESSAGE_SIZE in config)"
        )


class PublishTimeout(BrokerError):
    """No confirm arrived within the publish timeout."""


class ChannelError(BrokerError):
    """The broker refused an operation (a channel-level AMQP exception)."""

    reply_code = 0

    def __init__(self, reply_text: str, reply_code: int | None = None):
        super().__init__(reply_text)
        self.reply_text = reply_text
        if reply_code is not None:
            self.reply_code = reply_code


class NotFound(ChannelError):
    """404: the exchange or queue does not exist."""

    reply_code = 404


class PreconditionFailed(ChannelError):
    """406: e.g. re-declaring an entity with different properties."""

    reply_code = 406


# -- entities --------------------------------------------------------------

MAX_NAME_BYTES = 255  # an AMQP short string


def check_name(kind: str, name: str | None) -> None:
    """Raise `ValueError` for a name RabbitMQ would refuse: any UTF-8 text
    up to 255 bytes is fine (stricter AMQP grammars are not enforced)."""
    if name is not None and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(f"{kind} longer than {MAX_NAME_BYTES} bytes: {name!r}")


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "topic"  # direct | topic | fanout | headers
    durable: bool = True
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("exchange name", self.name)


@dataclass(frozen=True)
class Queue:
    name: str
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"x-expires": 300000}

    def __post_init__(self) -> None:
        check_name("queue name", self.name)


@dataclass(frozen=True)
class Binding:
    queue: str
    exchange: str
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)  # headers exchanges

    def __post_init__(self) -> None:
        check_name("queue name", self.queue)
        check_name("exchange name", self.exchange)
        check_name("routing key", self.routing_key)


Entity = Exchange | Queue | Binding


def declares_queue(topology: Iterable[Entity], queue: str) -> bool:
    """Whether ``topology`` declares ``queue`` (a named one): only such a
    consumer can bring its queue back after the broker deleted it."""
    return bool(queue) and any(isinstance(e, Queue) and e.name == queue for e in topology)


def report_queue_lost(queue: str, on_queue_lost: Callable[[], None]) -> None:
    """Tell a consumer's owner its queue had vanished and is back (dispatch
    thread); logged once per loss."""
    _log.warning(
        "queue %r had gone (deleted, or expired while disconnected) and was "
        "declared again: messages routed to it meanwhile are lost",
        queue,
    )
    try:
        on_queue_lost()
    except Exception:
        _log.exception("error in the queue-lost callback of %r", queue)


@dataclass(frozen=True)
class Properties:
    """AMQP basic properties. ``None`` means "not set"."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None


# -- consuming -------------------------------------------------------------


class Delivery:
    """A message handed to a consumer; settle it with `ack` or `reject`."""

    __slots__ = (
        "body",
        "properties",
        "exchange",
        "routing_key",
        "redelivered",
        "delivery_tag",
        "_settle",
        "_settled",
        "_holds",
    )

    def __init__(
        self,
        body: bytes,
        properties: Properties,
        exchange: str,
        routing_key: str,
        redelivered: bool,
        delivery_tag: int,
        settle: Callable[[int, bool, bool], bool | None],
        holds: Callable[[int], bool] | None = None,
    ) -> None:
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routing_key = routing_key
        self.redelivered = redelivered
        self.delivery_tag = delivery_tag
        # settle(delivery_tag, ack, requeue); the implementation makes it a
        # no-op returning False once the delivering channel is gone.
        self._settle = settle
        self._settled = False
        # holds(delivery_tag): whether the delivering channel is still open
        self._holds = holds

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def held(self) -> bool:
        """True while this delivery is unsettled and the channel that
        delivered it is open, as far as this client knows: the broker counts
        the message as ours and gives it to nobody else. False once it was
        settled, or its channel or connection closed (the broker requeued
        it). A lease held this way is how `nameko._schedule` elects a leader."""
        if self._settled:
            return False
        return self._holds is None or self._holds(self.delivery_tag)

    def ack(self) -> bool:
        """Acknowledge; False when that could not reach the broker (settled
        already, or the delivering channel is gone: the broker has requeued
        the message and will deliver it again)."""
        if self._settled:
            return False
        self._settled = True
        return self._settle(self.delivery_tag, True, False) is not False

    def reject(self, requeue: bool = False) -> bool:
        """Reject (``requeue``: back to the queue); False as for `ack`."""
        if self._settled:
            return False
        self._settled = True
        return self._settle(self.delivery_tag, False, requeue) is not False

    def __repr__(self) -> str:
        return f"<Delivery {self.exchange!r}/{self.routing_key!r} tag={self.delivery_tag}>"


OnMessage = Callable[[Delivery], object]  # what it returns is ignored


class Consumer(abc.ABC):
    """Handle on one active consumer (its own channel, its own prefetch)."""

    queue: str
    #: the broker ended this consumer for good (its queue was deleted and it
    #: does not declare it): its owner still wants it, nothing delivers to it
    lost: bool = False

    @property
    @abc.abstractmethod
    def attached(self) -> bool:
        """True while the broker delivers to this consumer: confirmed on the
        current connection and not cancelled (by us or by the broker) since.
        False while a reconnect or a re-declaration is restoring it."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Stop deliveries. Unsettled deliveries stay with us and can still be
        acked (graceful stop). Idempotent."""

    @abc.abstractmethod
    def close(self) -> None:
        """Cancel and give back every unsettled delivery to the queue
        (requeue, redelivered=True). Idempotent. Used by `kill`."""


@dataclass(frozen=True)
class ConsumerStatus:
    """One consumer its owner still wants (see `Broker.consumer_status`)."""

    queue: str
    attached: bool


class BrokerStats:
    """Counters of one connection, for metrics. Plain integers
    bumped by the thread that owns the event (under the I/O lock or on the
    I/O thread): reading them costs nothing until someone scrapes."""

    __slots__ = ("published", "confirmed", "returned", "nacked", "reconnects", "undecodable")

    def __init__(self) -> None:
        self.published = 0  # messages handed to the broker, confirmed or not
        self.confirmed = 0  # publishes the broker acked (returned ones included)
        self.returned = 0  # mandatory publishes the broker could not route
        self.nacked = 0  # publishes the broker refused
        self.reconnects = 0  # connections re-established after a loss
        self.undecodable = 0  # deliveries rejected because they could not be decoded


# -- the connection --------------------------------------------------------


class Broker(abc.ABC):
    """One client connection to a broker."""

    uri: str  # as given, for display use `nameko.utils.sanitize_url`
    #: bodies longer than this are refused with `MessageTooLarge` before sending
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: publish outcomes and reconnects, counted for metrics
    stats: BrokerStats

    @abc.abstractmethod
    def declare(self, entities: Iterable[Entity]) -> None:
        """Declare exchanges, queues and bindings, in order. Idempotent.
        Raises `PreconditionFailed` on a conflicting re-declaration and
        `NotFound` when a binding names a missing exchange or queue."""

    @abc.abstractmethod
    def delete_queue(self, name: str) -> None:
        """Delete a queue (no error if it does not exist)."""

    @abc.abstractmethod
    def queue_size(self, name: str) -> int:
        """How many messages wait in a queue, ready for delivery (unacked
        deliveries not counted); `NotFound` if it does not exist. Declares
        nothing."""

    @abc.abstractmethod
    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = False,
        confirm: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Publish one message (``exchange=""`` is the default exchange).

        With ``confirm`` (the default) this returns once the broker took
        responsibility; raises `Unroutable` when ``mandatory`` and no queue
        matched, `PublishNacked`, `PublishTimeout` after ``timeout`` seconds,
        `NotFound` when the exchange does not exist, `ConnectionLost`.
        A body over `max_message_size` raises `MessageTooLarge` at once,
        confirmed or not, and nothing is sent.
        Without ``confirm`` it returns once the message is handed to the
        transport; a return or nack is then only logged.
        """

    def publish_async(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = False,
    ) -> OneShot[None]:
        """Start a confirmed publish without waiting for its confirm.

        Returns a `OneShot` that is sent ``None`` once the broker confirms,
        or the exception `publish` would have raised (`Unroutable`,
        `PublishNacked`, `NotFound`, `ConnectionLost`...). Lets a caller keep
        several publishes in flight. This default publishes synchronously;
        implementations override it to pipeline. `MessageTooLarge` is
        raised at once, not delivered through the `OneShot`.
        """
        check_body_size(body, self.max_message_size, exchange, routing_key)
        outcome: OneShot[None] = OneShot()
        try:
            self.publish(exchange, routing_key, body, properties, mandatory=mandatory)
        except BrokerError as exc:
            outcome.send_exception(exc)
        else:
            outcome.send(None)
        return outcome

    @abc.abstractmethod
    def consume(
        self,
        queue: str,
        on_message: OnMessage,
        *,
        prefetch: int = 0,
        topology: Iterable[Entity] = (),
        no_ack: bool = False,
        ack_on_return: bool = False,
        adopt_redeliveries: bool = False,
        on_queue_lost: Callable[[], None] | None = None,
    ) -> Consumer:
        """Declare ``topology`` (again after each reconnect), then consume
        ``queue`` with ``prefetch`` unacked deliveries at most (0: unlimited).
        Returns once the broker confirmed the consumer.

        ``ack_on_return``: each delivery is acked when ``on_message`` returns
        (or raises), in delivery order, so an implementation may send one
        cumulative ack for several; settling it in the callback is a no-op.
        Unlike ``no_ack``, a delivery in flight when the connection drops is
        delivered again, not lost.

        When ``queue`` is deleted, a consumer whose ``topology`` declares it
        declares the topology again and goes on consuming the new queue
        (deliveries from the old one are no longer `Delivery.held`; an ack
        or a plain reject of them is a no-op, but on RabbitMQ 3.10 a
        ``reject(requeue=True)`` resets the channel, so that its unacked
        deliveries of the new queue come again); any other consumer just
        ends.

        ``adopt_redeliveries``: when the channel or connection that carried
        a delivery closes while it is still unsettled (its job goes on: a
        job longer than RabbitMQ's ``consumer_timeout``, a reconnect), the
        broker's redelivered copy is not handed to ``on_message`` again if
        it comes back to this consumer; it is settled as the original is
        (see `nameko._amqp.orphans`). A broker whose connection never drops
        may ignore it.

        ``on_queue_lost()`` (for such a consumer) is called on the dispatch
        thread, once per loss, when a queue found gone (deleted while
        consumed, or deleted or expired, ``x-expires``, while the connection
        was down) has been declared and bound again: whatever was routed to
        it in between was dropped by the broker, and from then on messages
        reach the new queue. Before re-declaring a queue it consumed, the
        consumer checks (passively) whether the queue still exists, which
        costs one round trip per reconnect, nothing per message."""

    @abc.abstractmethod
    def add_reconnect_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on the dispatch thread after every successful
        reconnect, once consumers are restored."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection: consumers end, unsettled deliveries go back
        to their queues, exclusive queues are deleted. Idempotent."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """True while the connection is up (False while reconnecting)."""

    @property
    @abc.abstractmethod
    def is_alive(self) -> bool:
        """True while the connection is up or being re-established; False
        once it is closed (by `close`, or having given up reconnecting)."""

    @abc.abstractmethod
    def consumer_status(self) -> list[ConsumerStatus]:
        """A snapshot of the consumers of this connection that their owners
        have not cancelled or closed, each attached or not: a consumer being
        restored after a reconnect or a deleted queue, or ended by the
        broker for good (`Consumer.lost`), is listed as not attached."""

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
