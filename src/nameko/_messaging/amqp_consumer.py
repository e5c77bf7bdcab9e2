"""nameko 3's ``nameko.amqp.consume.Consumer``: a blocking consumer (SPEC 12.3).

``Consumer(amqp_uri, queues=[...], callbacks=[fn])`` opens its own broker
connection when `run` is called, consumes every queue (declaring it, its
exchange and binding first, on every reconnect) and calls each callback
with ``(body, message)`` for every message, **on the thread that called
`run`**, as kombu's ``ConsumerMixin`` did. `run` blocks until `stop`;
`wait_until_consumer_ready` blocks until all queues are consumed. A
callback settles a message with `ack_message`/`requeue_message` (or the
message's own ``ack()``...): ``message`` is the same `Message` class every
shimeji entrypoint hands out (kombu's attributes).

How it works: the broker's I/O thread only wraps each delivery and queues
it; the `run` thread takes them in order, decodes and calls the callbacks.
So callbacks may block or publish (a confirmed publish from the I/O thread
would deadlock), and at most ``prefetch_count`` unsettled messages are held.

`stop` makes `run` return: messages that arrive after it, or that were
waiting for the `run` thread, are requeued; the connection then closes,
and the broker requeues anything still unsettled.

Differences from nameko 3, on purpose: a message that can't be decoded (its
content type not in ``accept``, a bad body) is rejected without requeue and
logged, not acked and lost; kombu ``Consumer`` options other than
``no_ack`` have no meaning on our connection and are ignored.
"""

from __future__ import annotations

import logging
import queue as queues_module
from collections.abc import Callable, Iterable
from typing import Any

from nameko._broker import connect
from nameko._broker.base import Broker, Delivery
from nameko._broker.base import Consumer as BrokerConsumer
from nameko._concurrency import Event
from nameko._messaging.entities import as_queue, queue_entities
from nameko._messaging.message import UNDECODABLE, Message, payload_or_reject
from nameko._urls import sanitize_url
from nameko.constants import DEFAULT_HEARTBEAT, DEFAULT_PREFETCH_COUNT

__all__ = ["Consumer"]

_log = logging.getLogger("nameko.amqp.consume")

_STOP = object()  # tells the run thread to return

Callback = Callable[[Any, Message], Any]


class Consumer:
    """Consumes ``queues`` and calls ``callbacks(body, message)`` from `run`."""

    def __init__(
        self,
        amqp_uri: str,
        ssl: Any = None,
        login_method: str | None = None,
        queues: Iterable[Any] | None = None,
        callbacks: Iterable[Callback] | None = None,
        heartbeat: float | None = None,
        prefetch_count: int | None = None,
        accept: Iterable[str] | None = None,
        **consumer_options: Any,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.ssl = ssl
        self.login_method = login_method
        self.queues = list(queues or [])
        self.callbacks = list(callbacks or [])
        self.heartbeat = DEFAULT_HEARTBEAT if heartbeat is None else heartbeat
        self.prefetch_count = DEFAULT_PREFETCH_COUNT if prefetch_count is None else prefetch_count
        self.accept = None if accept is None else list(accept)
        self.consumer_options = consumer_options
        self.should_stop = False
        self._inbox: queues_module.SimpleQueue[Any] = queues_module.SimpleQueue()
        self._ready = Event()
        self._failure: BaseException | None = None

    # -- the consuming loop ------------------------------------------------------

    def run(self) -> None:
        """Consume until `stop` is called (blocks; callbacks run on this thread)."""
        broker: Broker | None = None
        try:
            broker = connect(
                self.amqp_uri,
                heartbeat=self.heartbeat,
                ssl=self.ssl,
                login_method=self.login_method,
                connection_name="nameko:consumer",
            )
            consumers = [self._consume(broker, queue) for queue in self.queues]
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            if broker is not None:
                broker.close()
            raise
        _log.debug("consuming %d queue(s) on %s", len(consumers), sanitize_url(self.amqp_uri))
        self._ready.set()
        try:
            self._handle_until_stopped()
        finally:
            self._shut_down(broker, consumers)

    def _consume(self, broker: Broker, queue: Any) -> BrokerConsumer:
        return broker.consume(
            as_queue(queue).name,
            self._on_delivery,
            prefetch=self.prefetch_count,
            topology=queue_entities(queue),
            no_ack=bool(self.consumer_options.get("no_ack", False)),
        )

    def _handle_until_stopped(self) -> None:
        while True:
            item = self._inbox.get()
            if item is _STOP:
                return
            if self.should_stop:
                item.requeue()
                continue
            self._handle(item)

    def _handle(self, message: Message) -> None:
        body = payload_or_reject(message, _log)
        if body is UNDECODABLE:
            return
        for callback in self.callbacks:
            callback(body, message)

    def _shut_down(self, broker: Broker, consumers: list[BrokerConsumer]) -> None:
        for consumer in consumers:
            consumer.cancel()
        while True:  # what came in meanwhile goes back, in order
            try:
                item = self._inbox.get_nowait()
            except queues_module.Empty:
                break
            if item is not _STOP:
                item.requeue()
        broker.close()  # anything still unsettled is requeued by the broker

    def _on_delivery(self, delivery: Delivery) -> None:
        """On the broker's I/O thread: hand over to the run thread, nothing more."""
        if self.should_stop:
            delivery.reject(requeue=True)
            return
        self._inbox.put(Message(delivery, self.accept))

    # -- control -----------------------------------------------------------------

    def stop(self) -> None:
        """Make `run` return; later messages are requeued. Callable from any thread."""
        self.should_stop = True
        self._inbox.put(_STOP)

    def wait_until_consumer_ready(self, timeout: float | None = None) -> bool:
        """Block until every queue is consumed; re-raises what made `run` fail."""
        ready = self._ready.wait(timeout)
        if self._failure is not None:
            raise self._failure
        return ready

    def ack_message(self, message: Message) -> None:
        message.ack()

    def requeue_message(self, message: Message) -> None:
        message.requeue()
