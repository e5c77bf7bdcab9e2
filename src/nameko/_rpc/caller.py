"""Sending RPC requests: the mechanics shared by `RpcProxy` and standalone clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from nameko._broker.base import Broker, ConnectionLost, Properties, Unroutable
from nameko._concurrency import OneShot, start_thread
from nameko._ids import new_id
from nameko._messaging.publish import publish
from nameko._protocol import codecs
from nameko._protocol.deadlines import (
    DEADLINE_CONTEXT_KEY,
    DEADLINE_HEADER,
    call_deadline,
    encode_deadline,
    expiration_for,
)
from nameko._protocol.envelopes import encode_request
from nameko._protocol.headers import encode_context_headers
from nameko._protocol.names import rpc_routing_key
from nameko._rpc.replies import PendingReply, ReplyQueue
from nameko.constants import PERSISTENT
from nameko.exceptions import DeadlineExceeded, UnknownService

if TYPE_CHECKING:
    from nameko._tracing.otel import Tracing

__all__ = ["RpcCaller"]

T = TypeVar("T")


class _Budget(NamedTuple):
    """How long a call waits, and what its request says about it."""

    wait: float | None  # seconds to wait for the reply (None: for ever)
    deadline_ms: int | None  # the nameko.call_deadline header
    expiration: str | None  # the AMQP expiration property


class _Outgoing(NamedTuple):
    """One request on its way out, before it is encoded."""

    service: str
    routing_key: str
    payload: Any
    correlation_id: str
    headers: dict[str, Any]
    expiration: str | None


def _budget(inherited: Any, timeout: float | None, expiration: str | None) -> _Budget:
    """A call's budget: ``timeout`` or the ``inherited`` deadline (header
    value), whichever ends first; `DeadlineExceeded` if none is left."""
    now = time.time()
    deadline = call_deadline(inherited, timeout, now)
    if deadline is None:
        return _Budget(timeout, None, expiration)
    if deadline <= now:
        raise DeadlineExceeded(
            f"no time left to call: the deadline passed {now - deadline:.3f} s ago"
        )
    # RpcTimeout(wait) names the caller's own timeout unless an inherited deadline cut it
    wait = timeout if timeout is not None and deadline == now + timeout else deadline - now
    return _Budget(wait, encode_deadline(deadline), expiration_for(deadline, now, expiration))


class RpcCaller:
    """Publishes requests whose replies come back to ``replies``.

    ``options`` are nameko's publisher options; those that mean something
    here: ``use_confirms`` (default True: without confirms an unknown service
    can't be detected), ``serializer``, ``delivery_mode``, ``priority``,
    ``expiration``, ``timeout`` (seconds to wait for a reply; None: forever).
    """

    def __init__(
        self,
        broker: Broker,
        replies: ReplyQueue,
        serializer: str,
        *,
        reply_listener: Any = None,
        tracing: Tracing | None = None,
        **options: Any,
    ) -> None:
        self.broker = broker
        self.tracing = tracing  # TRACING on: a span per request, traceparent in its headers
        self.replies = replies
        # what 2.x proxies show as ``.reply_listener``: the container's
        # ReplyListener, or the reply queue itself for standalone clients
        self.reply_listener = replies if reply_listener is None else reply_listener
        self.exchange = replies.exchange
        self.serializer = options.get("serializer") or serializer
        self.use_confirms = options.get("use_confirms", True) is not False
        self.timeout = options.get("timeout")
        self._delivery_mode = options.get("delivery_mode", PERSISTENT)
        self._priority = options.get("priority", 0)
        self._expiration = options.get("expiration")
        # Services whose request queue we have seen confirmed. Requests to
        # them are pipelined: call_async returns without waiting for the
        # broker's confirm; a failed confirm is delivered to the waiting call
        # instead of its reply. The first
        # call to a service always waits, so calling a service that does not
        # exist raises UnknownService at call time, as in nameko.
        self._routable: set[str] = set()

    # -- nameko 2.x proxies: one call does everything -------------------------

    def call_async(
        self,
        service: str,
        method: str,
        args: Any,
        kwargs: Any,
        context_data: Mapping[str, Any],
        timeout: float | None = None,
    ) -> PendingReply:
        """Publish a request; raise `UnknownService` if nobody consumes it."""
        pending, outgoing = self._start_call(service, method, args, kwargs, context_data, timeout)
        self._traced(self._publish_request, outgoing)
        return pending

    def _start_call(
        self,
        service: str,
        method: str,
        args: Any,
        kwargs: Any,
        context_data: Mapping[str, Any],
        timeout: float | None,
    ) -> tuple[PendingReply, _Outgoing]:
        """The request (payload, headers, expiration), and its reply waited
        for until the call's deadline."""
        payload = encode_request(args, kwargs)
        headers = encode_context_headers(context_data)
        budget = _budget(
            context_data.get(DEADLINE_CONTEXT_KEY),
            self.timeout if timeout is None else timeout,
            self._expiration,
        )
        if budget.deadline_ms is not None:
            headers[DEADLINE_HEADER] = budget.deadline_ms
        pending = self.replies.router.register(new_id(), budget.wait)
        routing_key = rpc_routing_key(service, method)
        outgoing = _Outgoing(
            service, routing_key, payload, pending.correlation_id, headers, budget.expiration
        )
        return pending, outgoing

    def call_nowait(
        self,
        service: str,
        method: str,
        args: Any,
        kwargs: Any,
        context_data: Mapping[str, Any],
        timeout: float | None = None,
    ) -> tuple[PendingReply, OneShot[None] | None]:
        """`call_async` that never waits for the broker (for event loops).

        Returns the pending reply and, for a service whose queue this caller
        has not seen confirmed yet, the first request's outcome: None once
        confirmed, `UnknownService` if unroutable. Await that before the
        reply. Only the recovery from a lost connection uses a thread."""
        pending, outgoing = self._start_call(service, method, args, kwargs, context_data, timeout)
        return pending, self._traced(self._send_nowait, outgoing)

    def _send_nowait(self, outgoing: _Outgoing) -> OneShot[None] | None:
        """Publish without waiting; the first request's outcome, or None."""
        request = self._request(outgoing)
        service = outgoing.service
        if not self.use_confirms or service in self._routable:
            self._send_request(service, request, outgoing.correlation_id)
            return None
        return self._publish_first(service, request)

    def _publish_first(self, service: str, request: tuple[Any, ...]) -> OneShot[None]:
        first: OneShot[None] = OneShot()
        try:
            confirmation = self.broker.publish_async(*request, mandatory=True)
        except ConnectionLost:
            start_thread(self._publish_into, "rpc-first-publish", service, request, first)
            return first

        def confirmed(outcome: OneShot[None]) -> None:  # on the I/O thread
            exc = outcome.exception()
            if exc is None:
                self._routable.add(service)
                first.send(None)
            elif isinstance(exc, Unroutable):
                self._routable.discard(service)
                first.send_exception(UnknownService(service))
            else:  # outcome unknown (connection lost): the retrying path
                start_thread(self._publish_into, "rpc-first-publish", service, request, first)

        confirmation.add_done_callback(confirmed)
        return first

    def _publish_into(self, service: str, request: tuple[Any, ...], first: OneShot[None]) -> None:
        try:
            self._publish(service, request)
        except BaseException as exc:
            first.send_exception(exc)
        else:
            first.send(None)

    # -- nameko 3's Client: register first, then publish ----------------------

    def register_for_reply(self, correlation_id: str) -> Callable[[], Any]:
        """Start waiting for ``correlation_id``; returns the call that gets
        the reply body (`RpcTimeout()` after this caller's timeout)."""
        return self.replies.router.register(correlation_id, self.timeout).response

    def publish(
        self,
        payload: Any,
        *,
        routing_key: str,
        correlation_id: str,
        extra_headers: Mapping[str, Any] | None = None,
        mandatory: bool = True,  # requests are always mandatory: UnknownService needs it
        **_ignored: Any,  # reply_to, exchange...: this caller's own
    ) -> None:
        """Publish a request body for ``register_for_reply(correlation_id)``.

        The keywords are those of nameko's ``Publisher.publish``, so a
        `Client` can be handed either this or a partial of one of those.
        A deadline inherited in ``extra_headers`` (the worker's context)
        shortens the wait registered for the reply."""
        service = routing_key.rpartition(".")[0]  # method names have no dots
        headers = dict(extra_headers or {})
        try:
            budget = _budget(headers.get(DEADLINE_HEADER), self.timeout, self._expiration)
        except DeadlineExceeded:
            self.replies.router.discard(correlation_id)
            raise
        if budget.deadline_ms is not None:
            headers[DEADLINE_HEADER] = budget.deadline_ms
            self.replies.router.shorten(correlation_id, budget.wait)
        outgoing = _Outgoing(
            service, routing_key, payload, correlation_id, headers, budget.expiration
        )
        self._traced(self._publish_request, outgoing)

    # -- the one publishing path --------------------------------------------

    def _traced(self, send: Callable[[_Outgoing], T], outgoing: _Outgoing) -> T:
        """``send(outgoing)``, in a producer span when tracing (its
        traceparent goes in the headers); a failed send stops the wait."""
        try:
            if self.tracing is None:
                return send(outgoing)
            return self.tracing.publish_request(
                partial(send, outgoing),
                *(outgoing.headers, self.exchange, outgoing.routing_key, outgoing.correlation_id),
            )
        except BaseException:
            self.replies.router.discard(outgoing.correlation_id)  # nobody will wait for it
            raise

    def _publish_request(self, outgoing: _Outgoing) -> None:
        request = self._request(outgoing)
        self._send_request(outgoing.service, request, outgoing.correlation_id)

    def _request(self, outgoing: _Outgoing) -> tuple[Any, ...]:
        body, content_type, encoding = codecs.encode(outgoing.payload, self.serializer)
        properties = Properties(
            content_type=content_type,
            content_encoding=encoding,
            headers=outgoing.headers,
            delivery_mode=self._delivery_mode,
            priority=self._priority,
            correlation_id=outgoing.correlation_id,
            reply_to=self.replies.routing_key,
            expiration=outgoing.expiration,
            timestamp=int(time.time()),  # queue-wait metrics; nameko peers ignore it
        )
        return (self.exchange, outgoing.routing_key, body, properties)

    def _send_request(self, service: str, request: tuple[Any, ...], correlation_id: str) -> None:
        if self.use_confirms and service in self._routable:
            self._publish_pipelined(service, request, correlation_id)
        else:
            self._publish(service, request)

    def _publish(self, service: str, request: tuple[Any, ...]) -> None:
        """Publish and wait for the confirm: `UnknownService` at call time."""
        try:
            publish(self.broker, *request, mandatory=True, confirm=self.use_confirms)
        except Unroutable:
            self._routable.discard(service)
            raise UnknownService(service) from None
        if self.use_confirms:
            self._routable.add(service)

    def _publish_pipelined(
        self, service: str, request: tuple[Any, ...], correlation_id: str
    ) -> None:
        try:
            confirmation = self.broker.publish_async(*request, mandatory=True)
        except ConnectionLost:  # reconnecting: the retrying path waits for it
            self._publish(service, request)
        else:
            confirmation.add_done_callback(
                partial(self._confirmed, service, request, correlation_id)
            )

    def _confirmed(
        self,
        service: str,
        request: tuple[Any, ...],
        correlation_id: str,
        confirmation: OneShot[None],
    ) -> None:
        """A pipelined request's confirm arrived (on the broker's I/O thread:
        must not block). A failure goes to the waiting call instead of its
        reply; the reply itself is never held up by the confirm, which
        RabbitMQ only sends once the service has acked the request."""
        exc = confirmation.exception()
        if exc is None:
            return
        router = self.replies.router
        if isinstance(exc, Unroutable):  # the service went away since we last saw it
            self._routable.discard(service)
            router.deliver(correlation_id, error=UnknownService(service))
        elif isinstance(exc, ConnectionLost):  # outcome unknown: send it again
            if router.is_waiting(correlation_id):
                start_thread(self._republish, "rpc-republish", service, request, correlation_id)
        else:
            router.deliver(correlation_id, error=exc)

    def _republish(self, service: str, request: tuple[Any, ...], correlation_id: str) -> None:
        try:
            self._publish(service, request)
        except Exception as exc:
            self.replies.router.deliver(correlation_id, error=exc)
