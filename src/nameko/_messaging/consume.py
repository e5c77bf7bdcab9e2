"""``@consume``: run a service method for every message on a queue.

How it works: each `Consumer` entrypoint consumes its queue on the
container's shared broker connection (`BrokerConnection`), with a prefetch
of ``max_workers``. On the broker's dispatch thread it only decodes the body
and calls `spawn_worker` (which never blocks); the worker calls the method
with ``(body,)`` and the context data from the ``nameko.*`` headers, and the
message is settled on the worker thread once the method returned: acked, or
requeued when it raised and ``requeue_on_error`` is set.

``handle_message(body, message)`` and ``handle_result(message, ...)`` get a
`nameko._messaging.message.Message` (kombu's attributes: ``headers``,
``properties``, ``delivery_info``, ``ack()``...), so 2.x extensions that
override them work unchanged.

Declaring the queue: ``queue`` is, as in nameko, a kombu ``Queue`` (read by
duck typing if kombu is installed; it is not a dependency). Without kombu::

    from nameko._broker.base import Exchange, Queue

    @consume(Queue("jobs"), exchange=Exchange("work", type="direct"), routing_key="jobs")

or simply ``@consume("jobs")`` for a durable queue fed through the default
exchange. Extra keyword options (shimeji and nameko 3): ``exchange`` and
``routing_key`` (the binding of a queue given by name or as our `Queue`),
``prefetch_count`` (default ``max_workers``) and ``accept`` (serializers
allowed, default the container's ``ACCEPT``).

Deliberate differences from nameko 2.14 (ARCHITECTURE 5: no message can
crash or wedge a service):

* A message that can't be decoded (content type not accepted, bad body) is
  rejected without requeue and logged; nameko acked it silently (SPEC 13.7).
  A rejected message goes to the queue's dead-letter exchange if a policy
  sets one.
* ``requeue_on_error`` requeues a failed message once. If the message was
  already delivered before (redelivered, or counted by shimeji: see
  below) and the worker fails again, it is dead-lettered (``dlq-<service>.
  <method>``) and logged at ERROR. nameko requeued forever, so one poison
  message kept a service spinning (SPEC 13.12). A transient failure still
  gets its second chance, possibly on another instance.

Reliability (shimeji, `nameko._reliability`): ``retry=RetryPolicy(...)``
retries failures later through the broker, and a redelivered message is
counted and dead-lettered after ``DELIVERY_LIMIT`` deliveries, so a message
that kills its worker can't loop for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from nameko._broker.base import Consumer as BrokerConsumer
from nameko._broker.base import Delivery, Entity, OnMessage, PreconditionFailed, Queue
from nameko._messaging.connection import BrokerConnection
from nameko._messaging.entities import as_queue, queue_entities
from nameko._messaging.message import Message, decode_delivery, with_sent_at
from nameko._messaging.settings import ConsumerSettings
from nameko._protocol.headers import decode_context_headers
from nameko._protocol.queues import QUEUE_TYPE_ARGUMENT, queue_type_mismatch
from nameko._reliability.entrypoint import Outcome, Redeliveries, delivery_limit
from nameko._reliability.policy import RetryPolicy, as_retry_policy
from nameko._reliability.redelivery import Home
from nameko._runtime.extensions import (
    Entrypoint,
    ExpectedExceptions,
    Method,
    SensitiveArguments,
)
from nameko.constants import HEADER_PREFIX
from nameko.exceptions import ContainerBeingKilled

__all__ = [
    "Consumer",
    "HeaderDecoder",
    "QueueConsumerStopped",
    "consume",
    "consume_queue",
    "decode_delivery",
]

_log = logging.getLogger("nameko.messaging")

_SHIMEJI_OPTIONS = ("exchange", "routing_key", "prefetch_count", "accept")


class QueueConsumerStopped(Exception):
    """Kept for nameko compatibility; nothing raises it here."""


class HeaderDecoder:
    """Context data from a message's headers (``nameko.`` prefix stripped)."""

    header_prefix = HEADER_PREFIX

    def unpack_message_headers(self, message: Any) -> dict[str, Any]:
        return decode_context_headers(_headers_of(message), self.header_prefix)


def _headers_of(message: Any) -> Mapping[str, Any] | None:
    headers = getattr(message, "headers", None)  # our Message, or a kombu one
    if headers is not None:
        return headers
    properties = getattr(message, "properties", None)  # a bare Delivery
    return getattr(properties, "headers", None)


def consume_queue(
    connection: BrokerConnection,
    queue: str,
    on_message: OnMessage,
    prefetch: int,
    topology: list[Entity],
) -> BrokerConsumer:
    """Declare ``topology`` and consume ``queue`` on the container's
    connection. A queue that exists with another type than the one
    declared (``QUEUE_TYPE``) raises `QueueTypeMismatch`, a
    ConfigurationError that says what to change, not the broker's 406."""
    try:
        return connection.broker.consume(
            queue, on_message, prefetch=prefetch, topology=topology, adopt_redeliveries=True
        )
    except PreconditionFailed as exc:
        declared = next((e for e in topology if isinstance(e, Queue) and e.name == queue), None)
        if declared is not None:
            asked = declared.arguments.get(QUEUE_TYPE_ARGUMENT) or "classic"
            mismatch = queue_type_mismatch(queue, asked, exc.reply_text)
            if mismatch is not None:
                raise mismatch from exc
        raise


class Consumer(Entrypoint, HeaderDecoder):
    """The ``@consume(queue, requeue_on_error=False, ...)`` entrypoint."""

    connection = BrokerConnection()

    def __init__(
        self, queue: Any, requeue_on_error: bool = False, *, retry: Any = None, **kwargs: Any
    ) -> None:
        self.queue = queue
        self.requeue_on_error = requeue_on_error
        self.retry = as_retry_policy(retry)
        self.consumer_options = {k: kwargs.pop(k) for k in _SHIMEJI_OPTIONS if k in kwargs}
        self._consumer: BrokerConsumer | None = None
        self._stopped = False
        super().__init__(**kwargs)

    # -- lifecycle -----------------------------------------------------------

    def setup(self) -> None:
        self._queue_name, self._topology = self.get_topology()
        self._accept = self.consumer_options.get("accept") or self.container.accept
        self.redeliveries = Redeliveries(
            (self.container.service_name, self.method_name),
            self.retry,
            delivery_limit(self.container.config),
            broker=lambda: self.connection.broker,
            home=lambda delivery: Home("", self._queue_name),
            spawn=self.container.spawn_managed_thread,
        )
        # its dead-letter queue, if a retry policy will fill it, is there from the start
        self._topology += self.redeliveries.dead_letter_queue()
        self.connection.register_provider(self)

    def get_topology(self) -> tuple[str, list[Entity]]:
        """The queue to consume and everything to declare before consuming."""
        options = self.consumer_options
        entities = queue_entities(self.queue, options.get("exchange"), options.get("routing_key"))
        return as_queue(self.queue).name, entities

    def start(self) -> None:
        self._stopped = False
        self._consumer = consume_queue(
            self.connection, self._queue_name, self.handle_delivery, self._prefetch, self._topology
        )

    @property
    def _prefetch(self) -> int:
        return int(self.consumer_options.get("prefetch_count") or self.container.max_workers)

    @property
    def consumer(self) -> ConsumerSettings:
        """How this entrypoint consumes (nameko 3 has its consumer object here)."""
        config = self.container.config
        options = self.consumer_options
        return ConsumerSettings(config, self._prefetch, self._accept, [self._queue_name], options)

    def stop(self) -> None:
        # Cancel only: in-flight workers still ack before the connection closes.
        self._stopped = True
        if self._consumer is not None:
            self._consumer.cancel()
        self.connection.unregister_provider(self)

    def kill(self) -> None:
        self._stopped = True
        if self._consumer is not None:
            self._consumer.close()  # unacked messages go back to the queue
        self.connection.unregister_provider(self)

    # -- on the dispatch thread ------------------------------------------------

    def handle_delivery(self, delivery: Delivery) -> None:
        if self._stopped:
            delivery.reject(requeue=True)  # arrived while we were cancelling
            return
        if self.redeliveries.intercept(delivery):
            return  # counted or dead-lettered: a copy comes back, or nothing does
        message = Message(delivery, self._accept)
        try:
            body = message.payload
        except Exception as exc:
            _log.error(
                "rejected undecodable message on %r (routing key %r): %s",
                self._queue_name,
                delivery.routing_key,
                exc,
            )
            delivery.reject(requeue=False)
            return
        self.handle_message(body, message)

    def handle_message(self, body: Any, message: Message) -> None:
        context_data = with_sent_at(self.unpack_message_headers(message), message)
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(
                self, (body,), {}, context_data=context_data, handle_result=handle_result
            )
        except ContainerBeingKilled:
            message.requeue()

    # -- on the worker thread ----------------------------------------------------

    def handle_result(
        self, message: Message, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        self.handle_message_processed(message, result, exc_info)
        return result, exc_info

    def handle_message_processed(
        self, message: Message, result: Any = None, exc_info: Any = None
    ) -> None:
        if exc_info is not None and self._redelivered_elsewhere(message, exc_info[1]):
            message.ack()  # a copy was retried later or dead-lettered
        elif exc_info is None or not self.requeue_on_error:
            message.ack()
        elif not message.redelivered:
            message.requeue()
        else:
            _log.error(
                "message on %r (routing key %r) failed again after a redelivery (%s)",
                self._queue_name,
                message.routing_key,
                exc_info[1],
            )
            self._dead_letter_or_reject(message, exc_info[1])

    def _redelivered_elsewhere(self, message: Message, error: BaseException) -> bool:
        delivery = getattr(message, "delivery", None)
        if delivery is None:  # a kombu message from a 2.x extension's own consumer
            return False
        outcome = self.redeliveries.after_failure(delivery, error)
        return outcome is not Outcome.NOTHING

    def _dead_letter_or_reject(self, message: Message, error: BaseException) -> None:
        delivery = getattr(message, "delivery", None)
        if delivery is not None and self.redeliveries.give_up(delivery, "failed", error):
            message.ack()
        else:  # a kombu message, or the broker refused: dropped, as nameko would have
            message.reject(requeue=False)


def consume(
    queue: Any,
    requeue_on_error: bool = False,
    *,
    retry: RetryPolicy | int | bool | None = None,
    exchange: Any = None,
    routing_key: str | None = None,
    prefetch_count: int | None = None,
    accept: Any = None,
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Callable[[Method], Method]:
    """Run the decorated method, with the message body as its one argument,
    for every message on ``queue``.

    Args:
        queue: a queue name (a durable queue fed through the default
            exchange), a `nameko.amqp.Queue`, or a kombu ``Queue``
            (with its exchange and bindings).
        requeue_on_error: put a message whose worker raised back on the
            queue (once: a message that fails again is dead-lettered);
            by default it is acked and dropped.
        retry: a `nameko.reliability.RetryPolicy` (or a number of
            attempts): a failed message is retried later through the broker,
            then dead-lettered to ``dlq-<service>.<method>``.
        exchange: the exchange to bind a queue given by name to.
        routing_key: the binding's routing key.
        prefetch_count: messages in flight for this consumer (default the
            service's ``max_workers``).
        accept: the serializers accepted (default the ``ACCEPT`` config).
        expected_exceptions: exception classes the method raises on purpose:
            logged at WARNING instead of ERROR.
        sensitive_arguments: argument names (or paths inside them, such as
            ``"payload.password"``) masked wherever the call is logged.
        **kwargs: the deprecated ``sensitive_variables``, and options of
            subclasses.
    """
    options = {
        name: value
        for name, value in (
            ("exchange", exchange),
            ("routing_key", routing_key),
            ("prefetch_count", prefetch_count),
            ("accept", accept),
        )
        if value is not None
    }
    return Consumer.decorator(
        queue,
        requeue_on_error,
        retry=retry,
        expected_exceptions=expected_exceptions,
        sensitive_arguments=sensitive_arguments,
        **options,
        **kwargs,
    )
