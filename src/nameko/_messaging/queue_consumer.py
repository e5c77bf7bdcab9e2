"""nameko 2.x's ``QueueConsumer``, for extensions written against it (SPEC 3.9).

In nameko 2.14 every consuming extension registered with one shared
``QueueConsumer`` per container (a kombu ``ConsumerMixin`` on eventlet): a
provider with a ``queue`` attribute and a ``handle_message(body, message)``
method calls ``queue_consumer.register_provider(self)`` in ``setup()``; from
``start()`` on each message of that queue is decoded and handed to
``provider.handle_message``; the provider settles it with
``queue_consumer.ack_message(message)`` or ``requeue_message(message)``, and
``unregister_provider(self)`` in ``stop()`` cancels its consumer.

Here the same contract runs on the container's `BrokerConnection`: one
broker consumer (own channel, prefetch ``max_workers``) per registered
provider. As in nameko, ``handle_message`` runs on a managed thread of its
own per message (named ``"<ProviderCls>.handle_message[<routing key>]"``),
never on the broker's I/O thread, so it may block or publish. Messages
are our `Message` (kombu's attributes). Differences, on purpose: an
undecodable message is rejected without requeue and logged (nameko acked
it silently, SPEC 13.7); a message arriving for a provider that is
unregistering is requeued.

shimeji's own entrypoints (``@rpc``, ``@consume``, ``@event_handler``)
consume on the connection directly and don't register here;
``RpcConsumer.queue_consumer`` is this class so that 2.x code calling
``queue_consumer.ack_message(message)`` works. kombu's ``ConsumerMixin``
methods (``get_consumers``, ``on_consume_ready``, ``consume``...) have no
counterpart: the connection loop is ours.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from nameko._broker.base import Consumer as BrokerConsumer
from nameko._broker.base import Delivery
from nameko._concurrency import Lock
from nameko._messaging.connection import BrokerConnection
from nameko._messaging.entities import as_queue, queue_entities
from nameko._messaging.message import UNDECODABLE, Message, payload_or_reject
from nameko._runtime.extensions import ProviderCollector, SharedExtension

__all__ = ["QueueConsumer"]

_log = logging.getLogger("nameko.messaging")

_NO_MIXIN = (
    "nameko.messaging.QueueConsumer is not a kombu ConsumerMixin in shimeji: `{}` has no "
    "counterpart. Register a provider (an extension with `queue` and "
    "`handle_message(body, message)`) with `register_provider`, or use "
    "nameko.amqp.consume.Consumer for a consumer of your own."
)


class QueueConsumer(SharedExtension, ProviderCollector):
    """Consumes the queues of the providers registered with it."""

    connection = BrokerConnection()

    def __init__(self) -> None:
        super().__init__()
        self._consumers: dict[Any, BrokerConsumer] = {}
        self._started = False
        self._lock = Lock()

    # -- providers -------------------------------------------------------------

    def register_provider(self, provider: Any) -> None:
        first = not self._providers_registered
        super().register_provider(provider)
        if first:
            self.connection.register_provider(self)
        if self._started:  # registered late: consume at once, as nameko did
            self._consume(provider)

    def unregister_provider(self, provider: Any) -> None:
        with self._lock:
            consumer = self._consumers.pop(provider, None)
        if consumer is not None:
            consumer.cancel()  # in-flight messages can still be acked
        super().unregister_provider(provider)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        for provider in list(self._providers):
            self._consume(provider)

    def stop(self) -> None:
        self.wait_for_providers()
        self._started = False
        self.connection.unregister_provider(self)

    def kill(self) -> None:
        self._started = False
        with self._lock:
            consumers = list(self._consumers.values())
            self._consumers.clear()
        for consumer in consumers:
            consumer.close()  # unacked messages go back to their queues
        self.connection.unregister_provider(self)

    def _consume(self, provider: Any) -> None:
        with self._lock:
            if provider in self._consumers:
                return
        queue = provider.queue
        consumer = self.connection.broker.consume(
            as_queue(queue).name,
            partial(self._on_delivery, provider),
            prefetch=self.container.max_workers,
            topology=queue_entities(queue),
        )
        with self._lock:
            self._consumers[provider] = consumer

    # -- messages ----------------------------------------------------------------

    def _on_delivery(self, provider: Any, delivery: Delivery) -> None:
        """On the dispatch thread: decode, then hand over to a thread of its own."""
        if provider not in self._providers:
            delivery.reject(requeue=True)  # its provider is going away
            return
        message = Message(delivery, self.container.accept)
        body = payload_or_reject(message, _log)
        if body is UNDECODABLE:
            return
        name = f"{type(provider).__name__}.handle_message[{delivery.routing_key}]"
        self.container.spawn_managed_thread(partial(provider.handle_message, body, message), name)

    def ack_message(self, message: Any) -> None:
        """Ack; a no-op when the message's connection is gone (the broker
        requeued it already)."""
        message.ack()

    def requeue_message(self, message: Any) -> None:
        message.requeue()

    # -- kombu ConsumerMixin names: no meaning here --------------------------------

    def __getattr__(self, name: str) -> Any:
        if name in _MIXIN_NAMES:
            raise NotImplementedError(_NO_MIXIN.format(name))
        raise AttributeError(name)


_MIXIN_NAMES = frozenset(
    {
        "get_consumers",
        "on_consume_ready",
        "on_consume_end",
        "on_iteration",
        "on_connection_error",
        "on_connection_revived",
        "on_decode_error",
        "on_message",
        "consume",
        "run",
        "should_stop",
        "create_connection",
        "establish_connection",
        "Consumer",
        "consumer_context",
    }
)
