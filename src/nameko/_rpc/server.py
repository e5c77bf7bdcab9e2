"""Serving RPC: the ``@rpc`` entrypoint and the container's request consumer.

One `RpcConsumer` per container consumes ``rpc-<service>`` (prefetch =
``max_workers``). On the broker's dispatch thread it only does cheap, pure
work: find the method, decode and check the request, then `spawn_worker`
(which never blocks). The worker thread publishes the reply and moves on; the
request is acked when the broker confirms the reply (the confirm callback
runs on the I/O thread), so a request is never lost between "done" and
"answered" (at-least-once), and no worker is parked waiting for a confirm.

Bad input never hurts the service (SPEC 13.6/13.7 are nameko bugs we fix):
a request we can't handle is answered with the matching error when it has a
``reply_to`` and acked; without ``reply_to`` it is rejected without requeue
and logged once. Error replies are published from a short-lived managed
thread, because a confirmed publish must not run on the dispatch thread.

nameko 2.x extensions hook in where they did: every request goes through
`RpcConsumer.handle_message(body, message)` and the entrypoint's
``handle_message``/``handle_result``, with a kombu-like `Message`;
``rpc_consumer.queue_consumer.ack_message(message)`` settles a request
the extension answered (or republished) itself.

A reply never makes its request run again (docs D18): a reply whose confirm
was lost with its channel (or its connection) is published again; one the
broker refused (too large, nacked...) is replaced by a small error reply; a
request whose ack can no longer reach the broker is logged once, since
another instance may run it again. When the broker's copy of the request
comes back to this process instead, the broker layer settles it with this
request's settlement (`nameko._amqp.orphans`), so every path here settles
the request: acked once its reply is out, requeued when no reply could be
sent (so that it runs again rather than never answered). Replies are published ``mandatory``, so that one whose caller's reply queue
is gone comes back: it is logged once (names and ids, never the body) and
its request acked, as it ran (the caller learns of the loss from its own
broker, see `nameko._rpc.replies`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, overload

from nameko import exceptions
from nameko._broker.base import (
    Binding,
    BrokerClosed,
    BrokerError,
    ConfirmLost,
    ConnectionLost,
    Consumer,
    Delivery,
    Entity,
    Exchange,
    MessageTooLarge,
    Properties,
    Queue,
    Unroutable,
)
from nameko._concurrency import InFlight, OneShot, current_thread
from nameko._messaging.connection import BrokerConnection
from nameko._messaging.consume import HeaderDecoder, consume_queue
from nameko._messaging.message import Message, with_sent_at
from nameko._messaging.publish import publish
from nameko._messaging.queue_consumer import QueueConsumer
from nameko._messaging.settings import ConsumerSettings
from nameko._protocol import codecs
from nameko._protocol.envelopes import EncodedReply, decode_request, encode_reply_body
from nameko._protocol.names import (
    parse_routing_key,
    rpc_binding_key,
    rpc_exchange_name,
    rpc_queue_name,
)
from nameko._protocol.queues import queue_arguments, queue_type_for
from nameko._reliability.entrypoint import Outcome, Redeliveries, delivery_limit
from nameko._reliability.policy import RetryPolicy, as_retry_policy
from nameko._reliability.redelivery import Home
from nameko._runtime.extensions import (
    Entrypoint,
    ExpectedExceptions,
    Method,
    ProviderCollector,
    SensitiveArguments,
    SharedExtension,
    is_bare,
)
from nameko._tracing import tracing_for
from nameko.constants import PERSISTENT
from nameko.exceptions import (
    ContainerBeingKilled,
    MalformedRequest,
    MethodNotFound,
)

__all__ = ["Rpc", "RpcConsumer", "rpc"]

_log = logging.getLogger("nameko.rpc")

ACK_DRAIN_TIMEOUT = 30  # seconds a graceful stop waits for the last replies' confirms


class RpcConsumer(SharedExtension, ProviderCollector):
    connection = BrokerConnection()
    # nameko 2.x code settles requests through it (``ack_message``,
    # ``requeue_message``); requests are consumed on the connection directly
    queue_consumer = QueueConsumer()

    def __init__(self) -> None:
        super().__init__()
        self._by_routing_key: dict[str, Rpc] = {}
        self._consumer: Consumer | None = None
        self._unacked = InFlight()  # requests answered, waiting for the reply's confirm
        self._dispatch_thread: Any = None  # the broker thread that hands us requests
        self._tracing: Any = None  # set up from the config

    def setup(self) -> None:
        config = self.container.config
        self.exchange_name = rpc_exchange_name(config)
        self.queue_name = rpc_queue_name(self.container.service_name)
        self.queue_type = queue_type_for(config, self.container.service_name)
        self._tracing = tracing_for(config)  # TRACING on: a span per reply
        self.connection.register_provider(self)

    def start(self) -> None:
        if self._consumer is None:
            service = self.container.service_name
            topology: list[Entity] = [
                Exchange(self.exchange_name, type="topic", durable=True),
                Queue(self.queue_name, arguments=queue_arguments(self.queue_type)),
                Binding(self.queue_name, self.exchange_name, rpc_binding_key(service)),
            ]
            # dead-letter queues of methods with a retry policy: there before they are needed
            for provider in self._by_routing_key.values():
                topology += provider.redeliveries.dead_letter_queue()
            self._consumer = consume_queue(
                self.connection,
                self.queue_name,
                self.handle_delivery,
                self.container.max_workers,
                topology,
            )

    def register_provider(self, provider: Rpc) -> None:
        key = f"{provider.container.service_name}.{provider.method_name}"
        self._by_routing_key[key] = provider
        super().register_provider(provider)

    def unregister_provider(self, provider: Rpc) -> None:
        super().unregister_provider(provider)
        if not self._providers and self._consumer is not None:
            # the last @rpc entrypoint stopped: no more requests for us
            self._consumer.cancel()

    def stop(self) -> None:
        """After the workers finished: let the last replies' confirms arrive
        and their requests be acked, then give up the connection (closing it
        earlier would requeue requests that were answered)."""
        self.wait_for_providers()
        if not self._unacked.wait_idle(ACK_DRAIN_TIMEOUT):
            _log.warning(
                "%d answered request(s) not acked in time: they will be redelivered",
                len(self._unacked),
            )
        self.connection.unregister_provider(self)

    def kill(self) -> None:
        if self._consumer is not None:
            self._consumer.close()  # unacked requests go back to the queue
        self.connection.unregister_provider(self)

    @property
    def consumer(self) -> ConsumerSettings:
        """How requests are consumed (nameko 3 has its consumer object here)."""
        container = self.container
        return ConsumerSettings(
            container.config, container.max_workers, container.accept, [self.queue_name]
        )

    def get_provider_for_method(self, routing_key: str) -> Rpc:
        try:
            return self._by_routing_key[routing_key]
        except KeyError:
            raise MethodNotFound(parse_routing_key(routing_key)) from None

    def requeue_message(self, message: Message) -> None:
        self.queue_consumer.requeue_message(message)

    # -- on the dispatch thread --------------------------------------------

    def handle_delivery(self, delivery: Delivery) -> None:
        if not delivery.properties.reply_to:
            _log.error(
                "rejected RPC request %r without reply_to (correlation_id=%r): nowhere to reply",
                delivery.routing_key,
                delivery.properties.correlation_id,
            )
            delivery.reject(requeue=False)
            return
        self._dispatch_thread = current_thread()
        provider = self._by_routing_key.get(delivery.routing_key)
        if provider is not None and provider.redeliveries.intercept(delivery):
            return  # a redelivery counted (a copy comes back) or dead-lettered
        message = Message(delivery, self.container.accept)
        try:
            body = _request_body(message)
        except MalformedRequest as exc:
            _log.warning("bad RPC request %r: %s", delivery.routing_key, exc)
            self.handle_result(message, None, sys.exc_info())
            return
        self.handle_message(body, message)

    def handle_message(self, body: Any, message: Message) -> None:
        """Every request comes through here (nameko 2.x extensions override
        it): find the method's entrypoint and let it spawn the worker; a bad
        request is answered with its error."""
        try:
            provider = self.get_provider_for_method(message.routing_key)
            provider.handle_message(body, message)
        except Exception as exc:
            _log.warning("bad RPC request %r: %s", message.routing_key, exc)
            self.handle_result(message, None, sys.exc_info())

    def handle_result(self, message: Message, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Reply, then ack once the reply is confirmed. Called on the
        dispatch thread (a bad request), the reply goes out from a managed
        thread: a confirmed publish can't be made from there."""
        if current_thread() is self._dispatch_thread:
            self.container.spawn_managed_thread(
                partial(self.send_reply, message, result, exc_info), "rpc-error-reply"
            )
            return result, exc_info
        return self.send_reply(message, result, exc_info)

    def answer_error(self, delivery: Delivery, error: BaseException) -> None:
        """Reply ``error`` to a request that will not run (managed thread)."""
        self.send_reply(Message(delivery, self.container.accept), None, _exc_info(error))

    # -- on a worker thread --------------------------------------------------

    def send_reply(self, message: Message, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Publish the reply in the request's serializer; the request is acked
        once the broker has confirmed the reply. A result that can't be sent
        (unserialisable, or over the maximum message size) is replaced by
        the error saying so, which is also what ``worker_result`` sees."""
        delivery = message.delivery
        serializer = codecs.serializer_for(delivery.properties.content_type)
        if serializer is None or serializer not in self.container.accept:  # nor in one we refuse
            serializer = self.container.serializer
        exc = exc_info[1] if exc_info is not None else None
        reply = encode_reply_body(result, exc, serializer)
        if reply.error is not None and reply.error is not exc:  # the result could not be serialised
            exc_info = _exc_info(reply.error)
        try:
            self._send_reply(delivery, reply)
        except MessageTooLarge as too_large:
            _log.warning("the result of %r can't be sent: %s", delivery.routing_key, too_large)
            error = _result_too_large(delivery, too_large)
            reply = encode_reply_body(None, error, serializer)
            self._send_reply(delivery, reply)
            exc_info = _exc_info(error)
        return reply.result, exc_info

    def _send_reply(self, delivery: Delivery, reply: EncodedReply) -> None:
        if self._tracing is None:
            self._publish_reply(delivery, self._reply_args(delivery, reply))
            return
        # a producer span (child of the worker's), its traceparent in the reply's headers
        headers: dict[str, Any] = {}
        self._tracing.publish_reply(
            lambda: self._publish_reply(delivery, self._reply_args(delivery, reply, headers)),
            *(headers, self.exchange_name, delivery.routing_key),
            delivery.properties.correlation_id,
        )

    def _reply_args(
        self, delivery: Delivery, reply: EncodedReply, headers: dict[str, Any] | None = None
    ) -> tuple[Any, ...]:
        request = delivery.properties
        properties = Properties(
            content_type=reply.content_type,
            content_encoding=reply.content_encoding,
            headers={} if headers is None else headers,
            delivery_mode=PERSISTENT,
            priority=0,
            correlation_id=request.correlation_id,
        )
        return (self.exchange_name, request.reply_to, reply.body, properties)

    def _publish_reply(self, delivery: Delivery, reply_args: tuple[Any, ...]) -> None:
        broker = self.connection.broker
        try:
            confirmation = broker.publish_async(*reply_args, mandatory=True)
        except ConnectionLost:
            # Reconnecting: this delivery can no longer be acked and will be
            # redelivered; still answer, so this caller needn't wait for that.
            try:
                publish(broker, *reply_args)
            except BrokerError as exc:  # not the worker's fault: no traceback
                _log.warning("could not send the reply to %s either: %s", delivery, exc)
                _give_back(delivery)
            else:
                _ack(delivery)  # reaches the broker's copy if this process adopted it
        else:
            # The worker moves on; the ack follows the confirm (I/O thread).
            self._unacked.add()
            confirmation.add_done_callback(partial(self._settle_request, delivery, reply_args))

    # -- settling a request once its reply is confirmed ---------------------

    def _settle_request(
        self, delivery: Delivery, reply_args: tuple[Any, ...], confirmation: OneShot[None]
    ) -> None:
        """Ack a request once its reply is confirmed (on the I/O thread, so
        anything that needs to publish again goes to a thread of its own).
        Never runs the request again: at-least-once is about lost requests,
        and a reply the broker refused would be refused every time."""
        exc = confirmation.exception()
        if isinstance(exc, (ConfirmLost, ConnectionLost)):
            # the reply may not have reached the broker: send it again (on the
            # restored connection) before the request, or its copy, is acked
            self._in_thread(self._resend_reply, delivery, reply_args)
            return
        if isinstance(exc, Unroutable):  # its caller's reply queue is gone
            _warn_unroutable(delivery)
            exc = None  # it ran: settle it as answered
        if exc is not None and not isinstance(exc, BrokerClosed):
            self._in_thread(self._answer_refused, delivery, reply_args, exc)
        else:
            try:
                _ack(delivery)
            finally:
                self._unacked.done()

    def _in_thread(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on a managed thread, then count the request settled."""

        def run() -> None:
            try:
                fn(*args)
            except Exception:
                _log.exception("while settling the request %s", args[0])
            finally:
                self._unacked.done()

        self.container.spawn_managed_thread(run, "rpc-settle")

    def _resend_reply(self, delivery: Delivery, reply_args: tuple[Any, ...]) -> None:
        try:
            publish(self.connection.broker, *reply_args)
        except ConnectionLost:
            _give_back(delivery)
        except Unroutable:  # the caller's reply queue went meanwhile
            _warn_unroutable(delivery)
            _ack(delivery)
        except BrokerError as exc:
            self._answer_refused(delivery, reply_args, exc)
        else:
            _ack(delivery)

    def _answer_refused(
        self, delivery: Delivery, reply_args: tuple[Any, ...], refusal: BaseException
    ) -> None:
        """The broker refused the reply: answer with a (small) error saying
        so, and settle the request for good."""
        _log.error(
            "the broker refused the reply to %r (correlation_id=%s): %s; "
            "answering with an error, the request is not run again",
            delivery.routing_key,
            delivery.properties.correlation_id,
            refusal,
        )
        if isinstance(refusal, MessageTooLarge):
            refusal = _result_too_large(delivery, refusal)
        # the reply's own serializer (always one of ours, as the first reply was encoded with it)
        serializer = codecs.serializer_for(reply_args[3].content_type) or self.container.serializer
        reply = encode_reply_body(None, refusal, serializer)
        try:
            publish(self.connection.broker, *self._reply_args(delivery, reply))
        except BrokerError as exc:
            _log.error("could not send that error either (%s): request dropped", exc)
            delivery.reject(requeue=False)
        else:
            delivery.ack()


def _result_too_large(delivery: Delivery, exc: MessageTooLarge) -> BaseException:
    """The public error a caller gets in place of a result too large to send."""
    try:  # raised, so that worker_result gets a traceback with it
        raise exceptions.MessageTooLarge(
            f"the result of {delivery.routing_key!r} is too large to send: {exc}"
        ) from exc
    except exceptions.MessageTooLarge as error:
        return error


def _exc_info(exc: BaseException) -> tuple[Any, ...]:
    return (type(exc), exc, exc.__traceback__)


def _ack(delivery: Delivery) -> None:
    if not delivery.ack():  # its channel is gone
        _warn_lost_ack(delivery)


def _give_back(delivery: Delivery) -> None:
    """The reply could not be sent: let the request run again. A copy this
    process adopted goes back to the queue; otherwise the broker already
    took the request back with its channel."""
    delivery.reject(requeue=True)
    _warn_lost_ack(delivery)


def _warn_unroutable(delivery: Delivery) -> None:
    request = delivery.properties
    _log.warning(
        "the reply to %r (correlation_id=%s) was returned unroutable: the caller's "
        "reply queue (reply_to=%s) is gone; the request is acked, not run again",
        delivery.routing_key,
        request.correlation_id,
        request.reply_to,
    )


def _warn_lost_ack(delivery: Delivery) -> None:
    """Operators seeing a request run twice need to know why."""
    _log.warning(
        "the channel that delivered the request %r (correlation_id=%s) closed before it "
        "was acked (the connection dropped, or the broker closed the channel): the broker "
        "delivers it again, and another instance may run it a second time",
        delivery.routing_key,
        delivery.properties.correlation_id,
    )


def _request_body(message: Message) -> Any:
    """The decoded request body, or `MalformedRequest` saying why not."""
    if not message.content_type:  # a raw body can't be a request
        raise MalformedRequest("Message has no content_type: its body can't be decoded")
    try:
        return message.payload
    except Exception as exc:
        raise MalformedRequest(f"Message could not be decoded: {exc}") from exc


class Rpc(Entrypoint, HeaderDecoder):
    """``@rpc``: the method answers RPC requests."""

    rpc_consumer = RpcConsumer()
    observes_deadline = True  # the caller waits for the reply until its deadline

    def __init__(self, *args: Any, retry: Any = None, **kwargs: Any) -> None:
        """``retry``: a `nameko.reliability.RetryPolicy` (shimeji): a failed
        request is run again later, through the broker, while its caller
        waits; the caller gets the last attempt's outcome."""
        self.retry = as_retry_policy(retry)
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        consumer = self.rpc_consumer
        self.redeliveries = Redeliveries(
            (self.container.service_name, self.method_name),
            self.retry,
            delivery_limit(self.container.config),
            broker=lambda: consumer.connection.broker,
            # back through the RPC exchange: the routing key names the method
            home=lambda delivery: Home(consumer.exchange_name, delivery.routing_key),
            spawn=self.container.spawn_managed_thread,
            answer=consumer.answer_error,
        )
        consumer.register_provider(self)

    def stop(self) -> None:
        self.rpc_consumer.unregister_provider(self)

    def handle_message(self, body: Any, message: Message) -> None:
        """Dispatch thread: check the request and spawn its worker; raises
        on a bad request (`RpcConsumer.handle_message` answers it)."""
        args, kwargs = decode_request(body)
        self.check_signature(args, kwargs)
        context_data = with_sent_at(self.unpack_message_headers(message), message)
        try:
            self.container.spawn_worker(
                self,
                args,
                kwargs,
                context_data=context_data,
                handle_result=partial(self.handle_result, message),
            )
        except ContainerBeingKilled:
            self.rpc_consumer.requeue_message(message)

    def handle_result(
        self, message: Message, worker_ctx: Any, result: Any, exc_info: Any
    ) -> tuple[Any, Any]:
        delivery = getattr(message, "delivery", None)
        if exc_info is not None and delivery is not None:
            deadline = getattr(worker_ctx, "deadline", None)
            outcome = self.redeliveries.after_failure(delivery, exc_info[1], deadline)
            if outcome is Outcome.RETRIED:  # the caller waits for the retry's reply
                _ack(delivery)
                return result, exc_info
        return self.rpc_consumer.handle_result(message, result, exc_info)


@overload
def rpc(method: Method, /) -> Method: ...


@overload
def rpc(
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    *,
    retry: RetryPolicy | int | bool | None = None,
    **kwargs: Any,
) -> Callable[[Method], Method]: ...


def rpc(
    expected_exceptions: ExpectedExceptions | Callable[..., Any] = (),
    sensitive_arguments: SensitiveArguments = (),
    *,
    retry: RetryPolicy | int | bool | None = None,
    **kwargs: Any,
) -> Any:
    """Make a service method answer RPC requests: ``@rpc``, or ``@rpc(...)``
    with options.

    Args:
        expected_exceptions: exception classes the method raises on purpose
            (bad input, not found): they still go back to the caller as a
            `RemoteError`, but are logged at WARNING instead of ERROR.
        sensitive_arguments: names of arguments (or paths inside them, such
            as ``"payload.password"`` or ``"cards[0]"``) replaced by
            ``********`` wherever the call's arguments are logged or reported.
        retry: a `nameko.reliability.RetryPolicy` (or a number of attempts,
            or True for the defaults): a failed request is run again later,
            through the broker, while its caller waits; after the last attempt
            the caller gets that attempt's outcome and the request is
            dead-lettered.
        **kwargs: the deprecated ``sensitive_variables`` (nameko's older
            name for ``sensitive_arguments``), and options of subclasses.

    The method's own parameters are what callers pass:
    ``n.rpc.orders.create(item="x")`` calls ``create(self, item)``.
    """
    if is_bare(expected_exceptions):
        return Rpc.decorator(expected_exceptions)
    return Rpc.decorator(expected_exceptions, sensitive_arguments, retry=retry, **kwargs)
