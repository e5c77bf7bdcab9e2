"""The RabbitMQ broker: the `Broker` seam over our own AMQP 0-9-1 client.

One TCP connection, one I/O thread (`nameko._amqp.driver`), a sans-IO state
machine (`nameko._amqp.connection`). Channels:

* 1: publishing, in confirm mode, shared by every thread. Publishes are
  pipelined: each caller queues its frames under the driver lock and waits on
  its own `OneShot`, which the I/O thread resolves from the broker's
  ack/nack/return.
* 2: declarations and deletions (one call at a time, methods pipelined).
* 3...: one per consumer, with its own ``basic.qos``.

A channel the broker closes (404, 406...) is reopened on next use. When the
publish channel is closed because a publish named a missing exchange, the
in-flight publishes are sorted by what the broker must have done with them:
those before the culprit were processed but their confirms are lost
(`ConnectionLost`: outcome unknown); the culprit and later publishes to the
same exchange get `NotFound`; later publishes to other exchanges were
discarded unprocessed by the broker, so they are re-sent on the reopened
channel and their callers never notice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from pamqp import commands

from nameko import _concurrency
from nameko._amqp import codec
from nameko._amqp.connection import Connection, client_properties
from nameko._amqp.driver import Driver, NotConnected
from nameko._amqp.events import (
    ChannelClosed,
    ConnectionBlocked,
    ConnectionUnblocked,
    ConsumerCancelled,
    Delivered,
    Event,
    MethodReply,
    PendingPublish,
    PublishSettled,
    Returned,
)
from nameko._amqp.uri import parse_uri
from nameko._broker.base import (
    Binding,
    Broker,
    BrokerClosed,
    BrokerError,
    BrokerUnreachable,
    ChannelError,
    ConnectionLost,
    Consumer,
    Delivery,
    Entity,
    Exchange,
    NotFound,
    OnMessage,
    PreconditionFailed,
    Properties,
    PublishNacked,
    PublishTimeout,
    Queue,
    Unroutable,
)

__all__ = ["RabbitBroker"]

log = logging.getLogger(__name__)

PUBLISH_CHANNEL, CONTROL_CHANNEL, FIRST_CONSUMER_CHANNEL = 1, 2, 3
CALL_TIMEOUT = 60.0  # a broker that answers nothing for this long is not coming back
DEFAULT_TRANSPORT_OPTIONS = {"max_retries": 3, "interval_start": 2, "interval_step": 1, "interval_max": 5}
_MISSING_EXCHANGE = re.compile(r"exchange '(.*)' in vhost")


def channel_error(reply_code: int, reply_text: str) -> ChannelError:
    """The typed error for a channel the broker closed."""
    kind = {404: NotFound, 406: PreconditionFailed}.get(reply_code, ChannelError)
    return kind(reply_text, reply_code)


def declare_method(entity: Entity) -> Any:
    if isinstance(entity, Exchange):
        return commands.Exchange.Declare(
            exchange=entity.name,
            exchange_type=entity.type,
            durable=entity.durable,
            auto_delete=entity.auto_delete,
            arguments=dict(entity.arguments),
        )
    if isinstance(entity, Queue):
        return commands.Queue.Declare(
            queue=entity.name,
            durable=entity.durable,
            exclusive=entity.exclusive,
            auto_delete=entity.auto_delete,
            arguments=dict(entity.arguments),
        )
    if isinstance(entity, Binding):
        return commands.Queue.Bind(
            queue=entity.queue,
            exchange=entity.exchange,
            routing_key=entity.routing_key,
            arguments=dict(entity.arguments),
        )
    raise TypeError(f"cannot declare {entity!r}")


def _declarations(entities: Iterable[Entity]) -> list[Any]:
    # the default exchange exists, cannot be declared and binds every queue by name
    return [
        declare_method(e)
        for e in entities
        if not (isinstance(e, Exchange) and e.name == "") and not (isinstance(e, Binding) and e.exchange == "")
    ]


class _Lease:
    """One incarnation of a consumer's channel. Settling through it is a
    no-op once that channel (or its connection) is gone: the broker has
    already requeued those deliveries."""

    __slots__ = ("driver", "conn", "channel", "alive")

    def __init__(self, driver: Driver, conn: Connection, channel: int) -> None:
        self.driver, self.conn, self.channel, self.alive = driver, conn, channel, True

    def settle(self, delivery_tag: int, ack: bool, requeue: bool) -> None:
        if self.alive:
            try:
                self.driver.run(self._send, delivery_tag, ack, requeue)
            except NotConnected:
                pass

    def _send(self, conn: Connection, delivery_tag: int, ack: bool, requeue: bool) -> None:
        if self.alive and conn is self.conn and conn.has_channel(self.channel):
            if ack:
                conn.ack(self.channel, delivery_tag)
            else:
                conn.reject(self.channel, delivery_tag, requeue)


def _no_settle(delivery_tag: int, ack: bool, requeue: bool) -> None:
    """Deliveries of a ``no_ack`` consumer are settled already."""


STARTING, ACTIVE, CANCELLED, CLOSED = "starting", "active", "cancelled", "closed"


class RabbitConsumer(Consumer):
    """One consumer on its own channel."""

    def __init__(self, broker: RabbitBroker, queue: str, on_message: OnMessage, prefetch: int, topology: tuple[Entity, ...], no_ack: bool, channel: int) -> None:
        if not 0 <= prefetch <= 0xFFFF:
            raise ValueError(f"prefetch must be between 0 and 65535, not {prefetch}")
        self.queue = queue
        self.on_message = on_message
        self.prefetch = prefetch
        self.no_ack = no_ack
        self.channel = channel
        self.tag = f"shimeji.{channel}.{id(self):x}"
        self.declarations = _declarations(topology)
        self.state = STARTING
        self.lease: _Lease | None = None
        self._broker = broker

    def __repr__(self) -> str:
        return f"<RabbitConsumer queue={self.queue!r} channel={self.channel} {self.state}>"

    def start(self, conn: Connection, token: Any, *, resume: bool = False) -> None:
        """Queue everything that (re)starts this consumer; ``token`` gets the
        Consume-Ok. ``resume``: the channel is still open (server cancel)."""
        ch = self.channel
        if not resume:
            self.lease = _Lease(self._broker._driver, conn, ch)
            conn.open_channel(ch)
        for method in self.declarations:
            conn.send_method(ch, method)
        if not resume:
            conn.send_method(ch, commands.Basic.Qos(prefetch_count=self.prefetch))
        conn.send_method(ch, commands.Basic.Consume(queue=self.queue, consumer_tag=self.tag, no_ack=self.no_ack), token)

    def settle_function(self) -> Callable[[int, bool, bool], None]:
        return _no_settle if self.no_ack or self.lease is None else self.lease.settle

    def cancel(self) -> None:
        if self.state not in (STARTING, ACTIVE):
            return
        self.state = CANCELLED
        self._broker._channel_call(self, self._send_cancel)

    def _send_cancel(self, conn: Connection, token: Any) -> None:
        if self.lease is not None and self.lease.conn is conn and conn.has_channel(self.channel):
            conn.send_method(self.channel, commands.Basic.Cancel(consumer_tag=self.tag), token)
        else:
            token.send(None)

    def close(self) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        if self.lease is not None:
            self.lease.alive = False  # the broker requeues what is unsettled
        try:
            self._broker._channel_call(self, self._send_close)
        finally:
            self._broker._forget(self)

    def _send_close(self, conn: Connection, token: Any) -> None:
        if self.lease is not None and self.lease.conn is conn and conn.has_channel(self.channel):
            conn.close_channel(self.channel, token)
        else:
            token.send(None)


class _Countdown:
    """Token for restoring consumers after a reconnect: runs ``done`` once
    every consumer answered (successfully or not)."""

    def __init__(self, count: int, done: Callable[[], None]) -> None:
        self.count, self.done = count, done

    def one_done(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.done()


class _RestoreToken:
    __slots__ = ("consumer", "countdown")

    def __init__(self, consumer: RabbitConsumer, countdown: _Countdown | None) -> None:
        self.consumer, self.countdown = consumer, countdown

    def send(self, value: Any) -> None:
        if self.consumer.state == STARTING:
            self.consumer.state = ACTIVE
        if self.countdown is not None:
            self.countdown.one_done()

    def send_exception(self, exc: BaseException) -> None:
        log.error("could not restore the consumer of queue %r: %s", self.consumer.queue, exc)
        if self.countdown is not None:
            self.countdown.one_done()
