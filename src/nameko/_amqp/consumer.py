"""Consumers of the RabbitMQ broker: one channel each, and their topology.

`RabbitConsumer` is the `Consumer` handle `RabbitBroker.consume` returns. Its
deliveries are settled through a `Lease` on the channel incarnation that
delivered them, so that acks from before a reconnect never reach the new
connection (where the same delivery tags mean other messages).

A consumer given ``on_queue_lost`` checks, each time it consumes its queue
again (after a reconnect, a broker cancel, a closed channel), whether the
queue outlived the interruption: a passive declare before the topology. A
404 there (which closes the channel) means the queue was deleted or had
expired, and whatever was routed to it meanwhile is gone; the consumer then
declares the topology on a fresh channel and calls ``on_queue_lost`` once
the broker has answered its last declaration (the queue bound again: from
then on, messages reach it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from pamqp import commands

from nameko._amqp import methods
from nameko._amqp.connection import Connection
from nameko._amqp.driver import Driver, NotConnected
from nameko._amqp.orphans import Orphans
from nameko._broker.base import (
    Binding,
    ConnectionLost,
    Consumer,
    Delivery,
    Entity,
    Exchange,
    NotFound,
    OnMessage,
    Queue,
    declares_queue,
    report_queue_lost,
)

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CLOSED",
    "STARTING",
    "Countdown",
    "RabbitConsumer",
    "RestoreToken",
    "declarations",
    "declare_method",
]

log = logging.getLogger("nameko._broker.rabbit")


def declare_method(entity: Entity) -> Any:
    if isinstance(entity, Exchange):
        return methods.ExchangeDeclare(
            exchange=entity.name,
            exchange_type=entity.type,
            durable=entity.durable,
            auto_delete=entity.auto_delete,
            arguments=dict(entity.arguments),
        )
    if isinstance(entity, Queue):
        return methods.QueueDeclare(
            queue=entity.name,
            durable=entity.durable,
            exclusive=entity.exclusive,
            auto_delete=entity.auto_delete,
            arguments=dict(entity.arguments),
        )
    if isinstance(entity, Binding):
        return methods.QueueBind(
            queue=entity.queue,
            exchange=entity.exchange,
            routing_key=entity.routing_key,
            arguments=dict(entity.arguments),
        )
    raise TypeError(f"cannot declare {entity!r}")


def declarations(entities: Iterable[Entity]) -> list[Any]:
    # the default exchange exists, cannot be declared and binds every queue by name
    return [
        declare_method(e)
        for e in entities
        if not (isinstance(e, Exchange) and e.name == "")
        and not (isinstance(e, Binding) and e.exchange == "")
    ]


FAILOVER_FLAG = "x-cancel-on-ha-failover"


def queue_type(queue: Queue) -> str:
    return str(queue.arguments.get("x-queue-type") or "classic")


def consume_arguments(topology: Iterable[Entity], queue: str) -> dict[str, Any]:
    """Basic.Consume arguments for ``queue``.

    x-cancel-on-ha-failover: when a classic queue goes down, RabbitMQ 3.x
    first tries to consume the queue of the same name again; if someone has
    re-declared it meanwhile, a consumer of the deleted queue would be
    attached to the new one behind our back. With the flag the broker
    always cancels and `_on_consumer_cancelled` decides what to do. Quorum
    and stream queues refuse the flag (406), and need it not: their
    consumers survive a leader change. So it is left out for a queue the
    topology declares with such a type."""
    for entity in topology:
        if isinstance(entity, Queue) and entity.name == queue and queue_type(entity) != "classic":
            return {}
    return {FAILOVER_FLAG: True}


class Lease:
    """One incarnation of a consumer's channel. Settling through it is a
    no-op once that channel (or its connection) is gone: the broker has
    already requeued those deliveries, and a consumer that adopts its
    redeliveries passes the settlement on to the copy (`Orphans`)."""

    __slots__ = ("driver", "conn", "channel", "alive", "held_from", "unsettled", "orphans")

    def __init__(
        self, driver: Driver, conn: Connection, channel: int, orphans: Orphans | None = None
    ) -> None:
        self.driver, self.conn, self.channel, self.alive = driver, conn, channel, True
        # deliveries with lower tags came from a queue deleted since (`resume`)
        self.held_from = 0
        # what this incarnation delivered and nobody settled yet, by tag; kept
        # only for a consumer that adopts redeliveries (``orphans`` set)
        self.unsettled: dict[int, Delivery] = {}
        self.orphans = orphans

    def settle(self, delivery_tag: int, ack: bool, requeue: bool, multiple: bool = False) -> bool:
        """False when the channel is known to be gone and the settlement
        reached no other channel either. ``multiple`` acks every delivery up
        to ``delivery_tag`` in one frame."""
        if not self.alive:
            orphans = self.orphans
            return orphans is not None and orphans.settled(self, delivery_tag, ack, requeue)
        if self.orphans is not None:
            self.unsettled.pop(delivery_tag, None)
            if not self.alive:  # it died meanwhile: `Orphans.take` may have this one
                return self.orphans.settled(self, delivery_tag, ack, requeue)
        try:
            self.driver.submit(self._send, delivery_tag, ack, requeue, multiple, on_error=_ignore)
        except NotConnected:
            return False
        return True

    def holds(self, delivery_tag: int) -> bool:
        """Whether a delivery of this incarnation is still ours (unsettled
        ones are requeued by the broker once the channel is gone)."""
        return self.alive and delivery_tag >= self.held_from

    def ack_up_to(self, delivery_tag: int) -> None:
        self.settle(delivery_tag, True, False, multiple=True)

    def _send(
        self, conn: Connection, delivery_tag: int, ack: bool, requeue: bool, multiple: bool
    ) -> None:
        if self.alive and conn is self.conn and conn.has_channel(self.channel):
            if ack:
                conn.ack(self.channel, delivery_tag, multiple)
            else:
                conn.reject(self.channel, delivery_tag, requeue)


def _ignore(exc: Exception) -> None:
    """A settle that found no connection: the broker requeued the delivery."""


def _no_settle(delivery_tag: int, ack: bool, requeue: bool) -> bool:
    """Deliveries of a ``no_ack`` consumer are settled already (and those of an
    ``ack_on_return`` one are acked by the broker after the callback)."""
    return True


STARTING, ACTIVE, CANCELLED, CLOSED = "starting", "active", "cancelled", "closed"


class RabbitConsumer(Consumer):
    """One consumer on its own channel."""

    def __init__(
        self,
        driver: Driver,
        queue: str,
        on_message: OnMessage,
        prefetch: int,
        topology: tuple[Entity, ...],
        no_ack: bool,
        channel: int,
        *,
        call: Callable[[RabbitConsumer, Callable[[Connection, Any], None]], None],
        forget: Callable[[RabbitConsumer], None],
        ack_on_return: bool = False,
        adopt_redeliveries: bool = False,
        on_queue_lost: Callable[[], None] | None = None,
    ) -> None:
        if not 0 <= prefetch <= 0xFFFF:
            raise ValueError(f"prefetch must be between 0 and 65535, not {prefetch}")
        self.queue = queue
        self.on_message = on_message
        self.prefetch = prefetch
        self.no_ack = no_ack
        self.ack_on_return = ack_on_return  # the broker acks after on_message (cumulatively)
        # redelivered copies of jobs still running here are not run again (`Orphans`)
        self.orphans = (
            Orphans(queue) if adopt_redeliveries and not (no_ack or ack_on_return) else None
        )
        self.channel = channel
        self.tag = f"shimeji.{channel}.{id(self):x}"
        self.declarations = declarations(topology)
        self.redeclares_queue = declares_queue(topology, queue)
        self.on_queue_lost = on_queue_lost if self.redeclares_queue else None
        self._queue_lost = False  # found gone: report once declared again
        self._consume_arguments = consume_arguments(topology, queue)
        self.state = STARTING
        self.confirmed = False  # the broker's Consume-Ok for the current lease arrived
        self.lease: Lease | None = None
        self.last_delivery_tag = 0  # on the current channel (set by the broker)
        self._driver = driver
        self._call = call  # send a command and wait for its answer (see RabbitBroker)
        self._forget = forget

    def __repr__(self) -> str:
        return f"<RabbitConsumer queue={self.queue!r} channel={self.channel} {self.state}>"

    @property
    def attached(self) -> bool:
        lease = self.lease
        return self.state == ACTIVE and self.confirmed and lease is not None and lease.alive

    def start(self, conn: Connection, token: Any, *, check: bool = True) -> None:
        """Queue everything that (re)starts this consumer on a fresh channel,
        pipelined; ``token`` gets the Consume-Ok (or the error)."""
        ch = self.channel
        self.confirmed = False
        self.lease = Lease(self._driver, conn, ch, self.orphans)
        self.last_delivery_tag = 0  # a fresh channel numbers its deliveries from 1
        conn.open_channel(ch)
        if check and self._checks_queue():
            self._check_queue(conn, token)
            return
        self._declare_and_consume(conn, token)

    def resume(self, conn: Connection, token: Any) -> None:
        """Declare the topology again and consume again after the broker
        cancelled this consumer. The channel is kept when it is still open:
        settling deliveries of a deleted queue there is harmless."""
        lease = self.lease
        if lease is None or lease.conn is not conn or not conn.has_channel(self.channel):
            self.start(conn, token)
            return
        # what the deleted queue delivered is no longer anyone's (Delivery.held)
        lease.held_from = self.last_delivery_tag + 1
        self.confirmed = False
        if self._checks_queue():
            self._check_queue(conn, token)
            return
        self._declare_and_consume(conn, token)

    def _checks_queue(self) -> bool:
        # ACTIVE: consumed before (the first start finds no queue, as it should)
        return self.on_queue_lost is not None and self.state == ACTIVE

    def _check_queue(self, conn: Connection, token: Any) -> None:
        passive = methods.QueueDeclare(queue=self.queue, passive=True)
        conn.send_method(self.channel, passive, _QueueCheck(self, conn, token))

    def _after_check(self, conn: Connection, token: Any) -> None:
        """Go on after the passive declare (I/O thread, outside the lock)."""

        def go_on(current: Connection) -> None:
            if current is not conn:
                return  # reconnected again meanwhile: that restore takes over
            if self.state not in (STARTING, ACTIVE):
                token.send(None)  # cancelled or closed meanwhile
            elif conn.has_channel(self.channel):
                self._declare_and_consume(conn, token)
            else:  # the 404 closed the channel
                self.start(conn, token, check=False)

        try:
            self._driver.run(go_on)
        except NotConnected:
            token.send_exception(ConnectionLost("the connection dropped while restoring"))

    def _declare_and_consume(self, conn: Connection, token: Any) -> None:
        last = len(self.declarations) - 1
        for i, method in enumerate(self.declarations):
            # the queue found gone is reported once declared and bound again
            report = _ReportLoss(self) if i == last and self._queue_lost else None
            conn.send_method(self.channel, method, report)
        conn.send_method(self.channel, commands.Basic.Qos(prefetch_count=self.prefetch))
        self._consume(conn, token)

    def _consume(self, conn: Connection, token: Any) -> None:
        consume = methods.BasicConsume(
            queue=self.queue,
            consumer_tag=self.tag,
            no_ack=self.no_ack,
            arguments=self._consume_arguments,
        )
        conn.send_method(self.channel, consume, token)

    def orphan_deliveries(self) -> None:
        """The current channel is gone but this consumer goes on: what it
        delivered and nobody settled is still being worked on (I/O thread)."""
        if self.orphans is not None and self.lease is not None:
            self.orphans.take(self.lease)

    def adopts(self, delivery: Delivery) -> bool:
        """Track ``delivery`` until settled; True when it is the broker's
        copy of a job still running (or just run) here: then it must not
        run (I/O thread)."""
        orphans, lease = self.orphans, self.lease
        if orphans is None or lease is None:
            return False
        lease.unsettled[delivery.delivery_tag] = delivery
        return delivery.redelivered and orphans.waiting and orphans.adopt(delivery)

    def drop_failover_flag(self, refusal: str) -> bool:
        """After the broker refused the flag (the queue is a quorum queue
        declared elsewhere): True when it was sent and is now left out."""
        if FAILOVER_FLAG not in refusal or FAILOVER_FLAG not in self._consume_arguments:
            return False
        self._consume_arguments = {}
        return True

    def settle_function(self) -> Callable[[int, bool, bool], bool]:
        if self.no_ack or self.ack_on_return or self.lease is None:
            return _no_settle
        return self.lease.settle

    def holds_function(self) -> Callable[[int], bool] | None:
        return None if self.lease is None else self.lease.holds

    def cancel(self) -> None:
        self.lost = False  # its owner no longer wants it
        if self.state not in (STARTING, ACTIVE):
            return
        self.state = CANCELLED
        self._call(self, self._send_cancel)

    def _send_cancel(self, conn: Connection, token: Any) -> None:
        if self.lease is not None and self.lease.conn is conn and conn.has_channel(self.channel):
            conn.send_method(self.channel, commands.Basic.Cancel(consumer_tag=self.tag), token)
        else:
            token.send(None)

    def close(self) -> None:
        self.lost = False
        if self.state == CLOSED:
            return
        self.state = CLOSED
        if self.lease is not None:
            self.lease.alive = False  # the broker requeues what is unsettled
        try:
            self._call(self, self._send_close)
        finally:
            self._forget(self)

    def _send_close(self, conn: Connection, token: Any) -> None:
        if self.lease is not None and self.lease.conn is conn and conn.has_channel(self.channel):
            conn.close_channel(self.channel, token)
        else:
            token.send(None)


class _QueueCheck:
    """Token of the passive declare made before consuming a queue again."""

    __slots__ = ("consumer", "conn", "token")

    def __init__(self, consumer: RabbitConsumer, conn: Connection, token: Any) -> None:
        self.consumer, self.conn, self.token = consumer, conn, token

    def send(self, value: Any) -> None:  # the queue outlived the interruption
        self.consumer._after_check(self.conn, self.token)

    def send_exception(self, exc: BaseException) -> None:
        if not isinstance(exc, NotFound):
            self.token.send_exception(exc)
            return
        consumer, conn, token = self.consumer, self.conn, self.token
        consumer._queue_lost = True
        # later, on the I/O thread: the broker's handling of the closed
        # channel (which retires its lease) must be over before a new one opens
        consumer._driver.call_soon(lambda: consumer._after_check(conn, token))


class _ReportLoss:
    """Answer to the last declaration after the queue was found gone: from
    now on messages reach the new queue, so what waits for one sent earlier
    is told (once; a failed declaration leaves that to the next attempt)."""

    __slots__ = ("consumer",)

    def __init__(self, consumer: RabbitConsumer) -> None:
        self.consumer = consumer

    def send(self, value: Any) -> None:
        consumer = self.consumer
        if consumer._queue_lost and consumer.on_queue_lost is not None:
            consumer._queue_lost = False
            report_queue_lost(consumer.queue, consumer.on_queue_lost)

    def send_exception(self, exc: BaseException) -> None:
        """The restore fails too, and is retried."""


class Countdown:
    """Token for restoring consumers after a reconnect: runs ``done`` once
    every consumer answered (successfully or not)."""

    def __init__(self, count: int, done: Callable[[], None]) -> None:
        self.count, self.done = count, done

    def one_done(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.done()


class RestoreToken:
    """Token of one consumer's restore; ``on_failure(consumer, exc)``, when
    given, takes over a failure (to retry it) instead of just logging it."""

    __slots__ = ("consumer", "countdown", "on_failure")

    def __init__(
        self,
        consumer: RabbitConsumer,
        countdown: Countdown | None,
        on_failure: Callable[[RabbitConsumer, BaseException], None] | None = None,
    ) -> None:
        self.consumer, self.countdown, self.on_failure = consumer, countdown, on_failure

    def send(self, value: Any) -> None:
        self.consumer.confirmed = True
        if self.countdown is not None:
            self.countdown.one_done()

    def send_exception(self, exc: BaseException) -> None:
        if self.on_failure is None:
            log.error("could not restore the consumer of queue %r: %s", self.consumer.queue, exc)
        else:
            self.on_failure(self.consumer, exc)
        if self.countdown is not None:
            self.countdown.one_done()
