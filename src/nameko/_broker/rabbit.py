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

Reconnecting, restoring consumers and the rare events that end a channel or
a consumer are handled by the `Recovery` mixin (`_rabbit_recovery`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from pamqp import commands

from nameko import _concurrency
from nameko._amqp import codec, methods
from nameko._amqp.connection import Connection, client_properties
from nameko._amqp.consumer import (
    ACTIVE,
    CLOSED,
    STARTING,
    Lease,
    RabbitConsumer,
    declarations,
)
from nameko._amqp.driver import Driver, NotConnected
from nameko._amqp.events import (
    ChannelClosed,
    ConnectionBlocked,
    ConnectionUnblocked,
    ConsumerCancelled,
    Delivered,
    Event,
    MethodReply,
    PublishSettled,
    Returned,
    Undecodable,
)
from nameko._amqp.uri import AmqpParams, parse_uris
from nameko._broker._rabbit_recovery import PUBLISH_CHANNEL, Recovery
from nameko._broker.base import (
    Broker,
    BrokerClosed,
    BrokerError,
    BrokerStats,
    ChannelError,
    ConnectionLost,
    Consumer,
    ConsumerStatus,
    Delivery,
    Entity,
    NotFound,
    OnMessage,
    PreconditionFailed,
    Properties,
    PublishNacked,
    PublishTimeout,
    Unroutable,
    check_body_size,
)
from nameko.constants import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["RabbitBroker"]

log = logging.getLogger(__name__)

CONTROL_CHANNEL, FIRST_CONSUMER_CHANNEL = 2, 3
CALL_TIMEOUT = 60.0  # a broker that answers nothing for this long is not coming back
DEFAULT_TRANSPORT_OPTIONS = {
    "max_retries": 3,
    "interval_start": 2,
    "interval_step": 1,
    "interval_max": 5,
}


class RabbitBroker(Recovery, Broker):
    """`Broker` over one RabbitMQ connection (see the module docstring).

    ``transport_options``: ``max_retries`` (3; None retries forever),
    ``interval_start`` (2), ``interval_step`` (1), ``interval_max`` (5) shape
    the back-off of the first connection attempt, which then raises
    `BrokerUnreachable`; a connection lost later is retried forever with the
    same back-off (the first retry is immediate), or, with
    ``reconnect_forever=False``, ``max_retries`` times before the broker
    closes itself (idle pooled connections: nobody would see them retry).
    ``connect_timeout`` (10 s) bounds the TCP connect, TLS and AMQP
    handshakes. ``max_message_size``
    (bytes, default RabbitMQ's 128 MiB): larger bodies are refused with
    `MessageTooLarge` before they are sent (RabbitMQ would close the
    publishing channel, failing every publish in flight on it).
    """

    def __init__(
        self,
        uri: str,
        *,
        heartbeat: int | None = 60,
        ssl: bool | dict[str, Any] | None = None,
        login_method: str | None = None,
        transport_options: dict[str, Any] | None = None,
        connection_name: str | None = None,
        max_message_size: int | None = None,
        reconnect_forever: bool = True,
    ) -> None:
        self.uri = uri
        self._reconnect_forever = reconnect_forever
        self.max_message_size = max_message_size or DEFAULT_MAX_MESSAGE_SIZE
        nodes = parse_uris(uri, tls=bool(ssl))
        self._options = {**DEFAULT_TRANSPORT_OPTIONS, **(transport_options or {})}
        self._heartbeat = int(heartbeat or 0)
        self._login_method = (login_method or "PLAIN").upper()
        self._client_properties = client_properties(connection_name, _version())
        Connection(login_method=self._login_method)  # validates the login method now
        self._consumers: dict[int, RabbitConsumer] = {}
        self.stats = BrokerStats()
        self._listeners: list[Callable[[], None]] = []
        self._state_lock = _concurrency.Lock()
        self._control_lock = _concurrency.Lock()
        self._next_channel = FIRST_CONSUMER_CHANNEL
        self._closed = False
        self._closing = _concurrency.Event()  # wakes retry timers when we close
        self._first = _concurrency.OneShot()
        self._driver = Driver(
            nodes,
            self,
            ssl_options=ssl,
            connect_timeout=float(self._options.get("connect_timeout", 10.0)),
            name=f"amqp-io[{connection_name or nodes[0].host}]",
        )
        self._driver.start()
        try:
            self._first.get()
        except BaseException:
            self._closed = True
            self._driver.close()
            raise

    def __repr__(self) -> str:
        return f"<RabbitBroker {self._params.display}>"

    @property
    def _params(self) -> AmqpParams:
        """The node connected to (or being tried): one of ``uri``'s."""
        return self._driver.params

    @property
    def is_connected(self) -> bool:
        return self._driver.connection is not None and not self._closed

    @property
    def is_alive(self) -> bool:
        return not self._closed and self._driver.running

    def consumer_status(self) -> list[ConsumerStatus]:
        with self._state_lock:
            consumers = list(self._consumers.values())
        return [
            ConsumerStatus(c.queue, c.attached)
            for c in consumers
            if c.state in (STARTING, ACTIVE) or c.lost
        ]

    # -- the Broker API ----------------------------------------------------

    def declare(self, entities: Iterable[Entity]) -> None:
        methods = declarations(entities)
        if methods:
            self._control(methods)

    def queue_size(self, name: str) -> int:
        declared = self._control([commands.Queue.Declare(queue=name, passive=True)])
        return int(declared.message_count)

    def delete_queue(self, name: str) -> None:
        try:
            self._control([methods.QueueDelete(queue=name)])
        except NotFound:
            pass

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
        if not confirm:
            check_body_size(body, self.max_message_size, exchange, routing_key)
            encoded = codec.encode_properties(properties)  # outside the lock
            self._run(
                self._publish, exchange, routing_key, body, properties, mandatory, None, encoded
            )
            return
        waiter = self.publish_async(exchange, routing_key, body, properties, mandatory=mandatory)
        try:
            waiter.get(timeout)
        except TimeoutError:
            raise PublishTimeout(
                f"no confirm for a publish to {exchange!r}/{routing_key!r} within {timeout}s"
            ) from None

    def publish_async(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = False,
    ) -> _concurrency.OneShot[None]:
        """Pipelined: the frames go out now; the confirm fills the `OneShot` later."""
        if self._driver.on_io_thread():
            raise BrokerError(
                "a confirmed publish from the broker's dispatch thread would wait for a confirm "
                "only that thread can read: publish with confirm=False or from another thread"
            )
        check_body_size(body, self.max_message_size, exchange, routing_key)
        encoded = codec.encode_properties(properties)  # outside the lock: encode in parallel
        waiter: _concurrency.OneShot[None] = _concurrency.OneShot()
        self._submit(
            waiter.send_exception,
            self._publish,
            *(exchange, routing_key, body, properties, mandatory, waiter, encoded),
        )
        return waiter

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
        self._not_on_io_thread("consume")
        with self._state_lock:
            channel = self._allocate_channel()
            consumer = RabbitConsumer(
                self._driver,
                queue,
                on_message,
                prefetch,
                tuple(topology),
                no_ack,
                channel,
                call=self._channel_call,
                forget=self._forget,
                ack_on_return=ack_on_return and not no_ack,
                adopt_redeliveries=adopt_redeliveries,
                on_queue_lost=on_queue_lost,
            )
            self._consumers[channel] = consumer
        try:
            self._start_consumer(consumer)
        except BaseException:
            consumer.state = CLOSED
            self._abandon_channel(channel)
            self._forget(consumer)
            raise
        if consumer.state == STARTING:  # not if the broker cancelled it meanwhile
            consumer.state = ACTIVE
            consumer.confirmed = True
        return consumer

    def _start_consumer(self, consumer: RabbitConsumer) -> None:
        try:
            self._call(consumer.start)
        except PreconditionFailed as exc:
            # a quorum queue declared by someone else refuses the classic
            # queues' fail-over flag: consume it without (see consume_arguments)
            if not consumer.drop_failover_flag(str(exc)):
                raise
            self._call(consumer.start)

    def add_reconnect_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._driver.close()
        for consumer in list(self._consumers.values()):
            consumer.state = CLOSED

    # -- calls from user threads -------------------------------------------

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return self._driver.run(fn, *args)
        except NotConnected:
            raise self._lost_error() from None

    def _submit(
        self, on_error: Callable[[BaseException], Any], fn: Callable[..., Any], *args: Any
    ) -> None:
        """`Driver.submit`, a lost connection reported as `ConnectionLost`."""

        def report(exc: Exception) -> None:
            on_error(self._lost_error() if isinstance(exc, NotConnected) else exc)

        try:
            self._driver.submit(fn, *args, on_error=report)
        except NotConnected:
            raise self._lost_error() from None

    def _lost_error(self) -> BrokerError:
        if self._closed:
            return BrokerClosed(f"the connection to {self._params.display} was closed")
        return ConnectionLost(f"not connected to {self._params.display} (reconnecting)")

    def _not_on_io_thread(self, what: str) -> None:
        if self._driver.on_io_thread():
            raise BrokerError(f"{what} cannot wait for the broker on the broker's dispatch thread")

    def _call(self, send: Callable[[Connection, Any], None]) -> Any:
        """Run ``send(conn, token)`` and wait until the token is resolved."""
        waiter: _concurrency.OneShot[Any] = _concurrency.OneShot()
        self._run(send, waiter)
        try:
            return waiter.get(CALL_TIMEOUT)
        except TimeoutError:
            raise ConnectionLost(
                f"no answer from {self._params.display} within {CALL_TIMEOUT}s"
            ) from None

    def _channel_call(
        self, consumer: RabbitConsumer, send: Callable[[Connection, Any], None]
    ) -> None:
        """Cancel or close a consumer: wait for the answer unless we are on
        the I/O thread (then just send); a dead connection has nothing to undo."""
        try:
            if self._driver.on_io_thread():
                self._run(send, _concurrency.OneShot())
            else:
                self._call(send)
        except (ConnectionLost, BrokerClosed):
            pass
        except ChannelError as exc:
            log.warning("while stopping the consumer of %r: %s", consumer.queue, exc)

    def _control(self, methods: list[Any]) -> Any:
        self._not_on_io_thread("declare/delete_queue")
        with self._control_lock:
            return self._call(lambda conn, token: self._send_control(conn, methods, token))

    @staticmethod
    def _send_control(conn: Connection, methods: list[Any], token: Any) -> None:
        if not conn.has_channel(CONTROL_CHANNEL):
            conn.open_channel(CONTROL_CHANNEL)
        for method in methods[:-1]:
            conn.send_method(CONTROL_CHANNEL, method)
        conn.send_method(CONTROL_CHANNEL, methods[-1], token)

    def _publish(
        self,
        conn: Connection,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        mandatory: bool,
        token: Any,
        encoded: bytes | None,
    ) -> None:
        if not conn.has_channel(PUBLISH_CHANNEL):
            conn.open_channel(PUBLISH_CHANNEL)
            conn.send_method(PUBLISH_CHANNEL, commands.Confirm.Select())
        self.stats.published += 1  # under the driver's lock
        conn.publish(
            PUBLISH_CHANNEL,
            exchange,
            routing_key,
            body,
            properties,
            mandatory=mandatory,
            token=token,
            encoded_properties=encoded,
        )

    def _allocate_channel(self) -> int:
        conn = self._driver.connection
        channel_max = conn.channel_max if conn is not None else 2047
        for _ in range(channel_max):
            channel = self._next_channel
            self._next_channel = channel + 1 if channel < channel_max else FIRST_CONSUMER_CHANNEL
            if channel not in self._consumers:
                return channel
        raise BrokerError(f"all {channel_max} channels are in use")

    def _abandon_channel(self, channel: int) -> None:
        """Close a consumer channel we gave up waiting on (if it is open)."""
        try:
            self._run(lambda conn: conn.has_channel(channel) and conn.close_channel(channel))
        except BrokerError:
            pass

    def _forget(self, consumer: RabbitConsumer) -> None:
        with self._state_lock:
            if self._consumers.get(consumer.channel) is consumer:
                del self._consumers[consumer.channel]

    # -- driver callbacks (I/O thread) ---------------------------------------

    def new_connection(self) -> Connection:
        params = self._params
        return Connection(
            username=params.username,
            password=params.password,
            vhost=params.vhost,
            login_method=self._login_method,
            heartbeat=self._heartbeat,
            properties=self._client_properties,
        )

    def on_events(self, events: list[Event]) -> None:
        acks: dict[Lease, int] = {}  # ack_on_return consumers: one cumulative ack each
        for event in events:  # exact-type tests: cheaper than isinstance, no subclasses
            if type(event) is Delivered:
                self._on_delivered(event, acks)
            elif type(event) is PublishSettled:
                self._on_settled(event)
            elif type(event) is MethodReply:
                if event.token is not None:
                    event.token.send(event.method)
            else:
                self._on_rare_event(event)
        for lease, delivery_tag in acks.items():
            lease.ack_up_to(delivery_tag)

    def _on_delivered(self, event: Delivered, acks: dict[Lease, int]) -> None:
        consumer = self._consumers.get(event.channel)
        if consumer is None or consumer.state == CLOSED:
            return
        consumer.last_delivery_tag = event.delivery_tag
        delivery = Delivery(
            event.body,
            event.properties,
            event.exchange,
            event.routing_key,
            event.redelivered,
            event.delivery_tag,
            consumer.settle_function(),
            consumer.holds_function(),
        )
        if consumer.orphans is not None and consumer.adopts(delivery):
            return
        try:
            consumer.on_message(delivery)
        except Exception:
            log.exception("error in on_message for queue %r", consumer.queue)
        if consumer.ack_on_return and consumer.lease is not None:
            acks[consumer.lease] = event.delivery_tag

    def _on_undecodable(self, event: Undecodable) -> None:
        """Reject, without requeueing, a delivery nobody could ever decode:
        the broker dead-letters it where the queue has a dead-letter
        exchange, and the consumer goes on with the next one."""
        consumer = self._consumers.get(event.channel)
        if consumer is None or consumer.state == CLOSED:
            return  # its channel is closing: the broker requeues it for another consumer
        consumer.last_delivery_tag = event.delivery_tag
        if consumer.no_ack:
            outcome = "dropped (the consumer does not acknowledge)"
        elif consumer.lease is not None and consumer.lease.settle(event.delivery_tag, False, False):
            outcome = (
                "rejected without requeue (dead-lettered if the queue has a dead-letter exchange)"
            )
        else:
            outcome = "left to the broker (the channel is gone)"
        self.stats.undecodable += 1
        log.error(
            "undecodable message on queue %r (delivery tag %d, exchange %r, routing key %r, "
            "%d-byte body) %s: %s",
            *(consumer.queue, event.delivery_tag, event.exchange, event.routing_key),
            *(event.body_size, outcome, event.reason),
        )

    def _on_settled(self, event: PublishSettled) -> None:
        stats = self.stats  # on the I/O thread: no lock needed
        if event.ack:
            stats.confirmed += len(event.entries)
        else:
            stats.nacked += len(event.entries)
        for entry in event.entries:
            token = entry.token
            if entry.returned is not None:
                stats.returned += 1
                exc: BrokerError = Unroutable(
                    entry.exchange, entry.routing_key, entry.returned.reply_text
                )
            elif not event.ack:
                exc = PublishNacked(
                    f"the broker nacked a publish to {entry.exchange!r}/{entry.routing_key!r}"
                )
            else:
                if token is not None:
                    token.send(None)
                continue
            if token is None:
                log.warning("unconfirmed publish failed: %s", exc)
            else:
                token.send_exception(exc)

    def _on_rare_event(self, event: Event) -> None:
        if isinstance(event, ChannelClosed):
            self._on_channel_closed(event)
        elif isinstance(event, ConsumerCancelled):
            self._on_consumer_cancelled(event)
        elif isinstance(event, Returned):
            self.stats.returned += 1
            log.warning(
                "message to %r/%r returned: %s", event.exchange, event.routing_key, event.reply_text
            )
        elif isinstance(event, Undecodable):
            self._on_undecodable(event)
        elif isinstance(event, ConnectionBlocked):
            log.warning("the broker blocked the connection: %s", event.reason)
        elif isinstance(event, ConnectionUnblocked):
            log.info("the broker unblocked the connection")


def _version() -> str:
    from shimeji import __version__  # not importlib.metadata: see nameko._presence.announcer

    return __version__
