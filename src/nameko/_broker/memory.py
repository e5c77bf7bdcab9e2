"""The in-memory broker: AMQP 0-9-1 semantics inside one process.

Layout:

* `_Server`: one per URI (``memory://name``; ``memory://`` is the unnamed
  one), shared by every connection to that URI in the process. It holds the
  exchanges, queues and bindings under a single lock; the routing rules are
  pure functions in `_memory_routing`.
* `MemoryBroker`: one connection. It owns a dispatch thread (started by its
  first consumer) that runs ``on_message`` callbacks one at a time, in the
  order the server handed the deliveries out.
* `MemoryConsumer`: one consumer with its own delivery tags and prefetch,
  like a consumer on its own channel.

Semantics follow RabbitMQ 3.10 and are pinned by ``tests/contract``, which
runs the same tests against a real broker: default/direct/topic/fanout/headers
exchanges, the ``amq.*`` exchanges, exclusive/auto-delete queues, ``x-expires``,
per-queue and per-message TTL, ``x-max-length`` (``drop-head`` and
``reject-publish``, which nacks), mandatory returns, prefetch, round-robin
dispatch, ``x-single-active-consumer``, requeue to the original position
with ``redelivered=True``.

Deliberate differences from RabbitMQ:

* A confirmed publish from the dispatch thread raises `BrokerError` even
  though nothing here would deadlock: the seam says so, and a fake that
  allowed it would hide a bug that hangs against RabbitMQ.
* Declaring the default exchange, or binding to it, is accepted and ignored
  (RabbitMQ says 403); the rabbit broker skips them the same way.
* An unconfirmed publish never raises for routing problems (missing
  exchange, unroutable, refused by a full queue): like RabbitMQ, the failure
  is only logged.
* A consumer whose deleted queue it declares again makes one attempt; if
  the declaration fails the consumer ends with an error logged (the rabbit
  broker retries with back-off: there, a failure may be transient).
* Nothing is persisted (``durable`` is only compared on re-declaration);
  ``user_id`` is not checked; dead-lettering, alternate exchanges, priority
  queues and byte-length limits are accepted but not enforced; an unknown
  exchange type is a `ChannelError` 503 (RabbitMQ closes the connection).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from nameko._broker._memory_routing import copy_headers
from nameko._broker._memory_server import ACTIVE, CLOSED, Message, QueueState, Server
from nameko._broker.base import (
    Broker,
    BrokerClosed,
    BrokerError,
    BrokerStats,
    Consumer,
    ConsumerStatus,
    Delivery,
    Entity,
    NotFound,
    OnMessage,
    Properties,
    PublishNacked,
    Unroutable,
    check_body_size,
    declares_queue,
    report_queue_lost,
)
from nameko._concurrency import Condition, Lock, ManagedThread
from nameko.constants import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["MemoryBroker", "MemoryConsumer", "reset"]

log = logging.getLogger(__name__)

# How long close() waits for a callback that is still running.
_CLOSE_JOIN_TIMEOUT = 10.0


# -- the process-wide servers ----------------------------------------------

_servers: dict[str, Server] = {}
_servers_lock = Lock()


def _acked_on_return(on_message: OnMessage) -> OnMessage:
    def handle(delivery: Delivery) -> None:
        try:
            on_message(delivery)
        finally:
            delivery.ack()  # a no-op if the callback settled it

    return handle


def _server_name(uri: str) -> str:
    # "memory://", "memory:///" and "memory://?x=1" all name the same server
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    return rest.split("?", 1)[0].strip("/")


def _server_for(uri: str) -> Server:
    name = _server_name(uri)
    with _servers_lock:
        server = _servers.get(name)
        if server is None:
            server = _servers[name] = Server(name)
        return server


def reset(uri: str | None = None) -> None:
    """Forget the server behind ``uri`` (all servers when None), for tests.

    The next connection to that URI starts from an empty broker. Close the
    connections first: open ones keep working on the forgotten server, alone.
    """
    with _servers_lock:
        names = list(_servers) if uri is None else [_server_name(uri)]
        forgotten = [_servers.pop(name) for name in names if name in _servers]
    for server in forgotten:
        server.forget()


# -- the connection --------------------------------------------------------


class MemoryConsumer(Consumer):
    """One consumer; its delivery tags and prefetch are its own, like a channel's."""

    def __init__(
        self,
        connection: MemoryBroker,
        queue: str,
        on_message: OnMessage,
        prefetch: int,
        no_ack: bool,
        topology: tuple[Entity, ...] = (),
        on_queue_lost: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.on_queue_lost = on_queue_lost
        self.connection = connection
        self.on_message = on_message
        self.prefetch = prefetch
        self.no_ack = no_ack
        self.topology = topology
        self.redeclares_queue = declares_queue(topology, queue)
        # the fields below are guarded by the server lock
        self.state = ACTIVE
        self.unacked: dict[int, Message] = {}
        self._next_tag = 1
        self.queue_state: QueueState | None = None

    def has_room(self) -> bool:
        # prefetch does not apply to no-ack consumers (nothing stays unacked)
        return self.no_ack or not self.prefetch or len(self.unacked) < self.prefetch

    def deliver(self, message: Message) -> None:
        tag, self._next_tag = self._next_tag, self._next_tag + 1
        if not self.no_ack:
            self.unacked[tag] = message
        # each delivery gets its own headers: a consumer mutating them cannot
        # change what another queue's consumer (or a redelivery) sees
        properties = replace(message.properties, headers=copy_headers(message.properties.headers))
        delivery = Delivery(
            message.body,
            properties,
            message.exchange,
            message.routing_key,
            message.redelivered,
            tag,
            self._settle,
            self._holds,
        )
        self.connection._post(self, delivery)

    def _holds(self, tag: int) -> bool:
        # reads only, no lock needed; a deleted queue's deliveries are nobody's
        queue = self.queue_state
        return self.state != CLOSED and tag in self.unacked and not (queue and queue.deleted)

    def _settle(self, tag: int, ack: bool, requeue: bool) -> bool:
        return self.connection._server.settle(self, tag, ack, requeue)

    @property
    def attached(self) -> bool:
        queue = self.queue_state
        return self.state == ACTIVE and queue is not None and not queue.deleted

    def cancel(self) -> None:
        self.lost = False  # its owner no longer wants it
        self.connection._server.remove_consumer(self, requeue=False)

    def close(self) -> None:
        self.lost = False
        self.connection._server.remove_consumer(self, requeue=True)

    def __repr__(self) -> str:
        return f"<MemoryConsumer {self.queue!r} {self.state}>"


class MemoryBroker(Broker):
    """A connection to the in-process broker named by ``uri`` (``memory://[name]``).

    ``options``: ``max_message_size`` as for RabbitMQ; the others
    (heartbeat, ssl, login_method, transport_options, connection_name, ...)
    are accepted and ignored.
    """

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri
        self.max_message_size = options.get("max_message_size") or DEFAULT_MAX_MESSAGE_SIZE
        self._server = _server_for(uri)
        self.closed = False  # guarded by the server lock
        self.consumers: set[MemoryConsumer] = set()  # guarded by the server lock
        self._reconnect_listeners: list[Callable[[], None]] = []
        # deliveries, and None for "the consumer's queue was deleted: restore it"
        self._outbox: deque[tuple[MemoryConsumer, Delivery | None]] = deque()
        self._outbox_ready = Condition()
        self._stopping = False  # guarded by _outbox_ready
        self._dispatcher: ManagedThread | None = None
        self.stats = BrokerStats()
        self._stats_lock = Lock()

    def require_open(self) -> None:
        if self.closed:
            raise BrokerClosed(f"connection to {self.uri} is closed")

    # -- Broker API

    def declare(self, entities: Iterable[Entity]) -> None:
        self._server.declare(self, entities)

    def queue_size(self, name: str) -> int:
        return self._server.queue_size(self, name)

    def delete_queue(self, name: str) -> None:
        self._server.delete_queue(self, name)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = False,
        confirm: bool = True,
        timeout: float | None = None,  # confirms are immediate here
    ) -> None:
        self.require_open()
        if confirm and self._on_dispatch_thread():
            raise BrokerError("a confirmed publish cannot be made from the dispatch thread")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        check_body_size(body, self.max_message_size, exchange, routing_key)
        # snapshot now: the publisher may mutate its headers after we return
        props = replace(properties, headers=copy_headers(properties.headers))
        try:
            matched, refused = self._server.publish(self, exchange, routing_key, bytes(body), props)
        except NotFound as exc:
            if confirm:
                raise
            log.warning("unconfirmed publish failed: %s", exc.reply_text)
            return
        unroutable = matched == 0 and mandatory
        self._count(unroutable, refused)
        if unroutable:
            failure: BrokerError = Unroutable(exchange, routing_key)
        elif refused:
            failure = PublishNacked(
                f"a full queue refused the message ({exchange!r}, {routing_key!r})"
            )
        else:
            return
        if confirm:
            raise failure
        log.warning("unconfirmed publish failed: %s", failure)

    def _count(self, returned: bool, nacked: bool) -> None:
        with self._stats_lock:  # publishers on many threads: += alone could lose counts
            stats = self.stats
            stats.published += 1
            if nacked:
                stats.nacked += 1
            else:
                stats.confirmed += 1
                stats.returned += returned

    def consume(
        self,
        queue: str,
        on_message: OnMessage,
        *,
        prefetch: int = 0,
        topology: Iterable[Entity] = (),
        no_ack: bool = False,
        ack_on_return: bool = False,
        adopt_redeliveries: bool = False,  # nothing to adopt: a memory channel never closes
        on_queue_lost: Callable[[], None] | None = None,
    ) -> Consumer:
        if prefetch < 0:
            raise ValueError("prefetch must be 0 (unlimited) or positive")
        if ack_on_return:
            on_message = _acked_on_return(on_message)
        topology = tuple(topology)
        self.declare(topology)
        self._start_dispatcher()
        consumer = MemoryConsumer(
            self, queue, on_message, prefetch, no_ack, topology, on_queue_lost
        )
        self._server.add_consumer(self, consumer)
        return consumer

    def add_reconnect_listener(self, callback: Callable[[], None]) -> None:
        self._reconnect_listeners.append(callback)  # a memory connection never drops

    def close(self) -> None:
        if not self._server.close_connection(self):
            return
        with self._outbox_ready:
            self._stopping = True
            self._outbox.clear()  # their consumers are closed: nothing may run
            self._outbox_ready.notify_all()
        dispatcher = self._dispatcher
        # join, so that no callback of this connection runs once close() returns
        joined = dispatcher is None or dispatcher.is_current or dispatcher.join(_CLOSE_JOIN_TIMEOUT)
        if not joined:
            log.warning("on_message callback still running after close() of %s", self.uri)

    @property
    def is_connected(self) -> bool:
        return not self.closed

    @property
    def is_alive(self) -> bool:
        return not self.closed  # a memory connection never drops

    def consumer_status(self) -> list[ConsumerStatus]:
        with self._server.lock:
            consumers = list(self.consumers)
        return [
            ConsumerStatus(c.queue, c.attached) for c in consumers if c.state == ACTIVE or c.lost
        ]

    # -- dispatching

    def _on_dispatch_thread(self) -> bool:
        dispatcher = self._dispatcher
        return dispatcher is not None and dispatcher.is_current

    def _start_dispatcher(self) -> None:
        with self._outbox_ready:
            if self._dispatcher is None and not self._stopping:
                self._dispatcher = ManagedThread(
                    self._dispatch_loop,
                    f"memory-broker-dispatch-{id(self):x}",
                    on_error=lambda _thread, exc_info: log.error(
                        "memory broker dispatch thread crashed", exc_info=exc_info
                    ),
                    on_exit=lambda _thread: None,
                ).start()

    def _post_restore(self, consumer: MemoryConsumer) -> None:
        """The consumer's queue was deleted: let the dispatch thread declare
        it again, after the deliveries already queued (under the server lock)."""
        self._post(consumer, None)

    def _restore(self, consumer: MemoryConsumer) -> None:
        try:
            restored = self._server.restore_consumer(self, consumer, consumer.topology)
        except BrokerError as exc:
            log.error("could not consume queue %r again: %s", consumer.queue, exc)
            return
        if restored and consumer.on_queue_lost is not None:
            report_queue_lost(consumer.queue, consumer.on_queue_lost)

    def _post(self, consumer: MemoryConsumer, delivery: Delivery | None) -> None:
        """Queue a delivery for the dispatch thread (called under the server lock)."""
        with self._outbox_ready:
            if not self._stopping:
                self._outbox.append((consumer, delivery))
                self._outbox_ready.notify()

    def _dispatch_loop(self) -> None:
        while True:
            with self._outbox_ready:
                while not self._outbox and not self._stopping:
                    self._outbox_ready.wait()
                if self._stopping:
                    return
                consumer, delivery = self._outbox.popleft()
            if consumer.state == CLOSED:
                continue  # its "channel" is gone and the message went back to the queue
            if delivery is None:
                self._restore(consumer)
                continue
            try:
                consumer.on_message(delivery)
            except Exception:
                log.exception("on_message callback for queue %r raised", consumer.queue)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<MemoryBroker {self._server.name or 'default'!r} {state}>"
