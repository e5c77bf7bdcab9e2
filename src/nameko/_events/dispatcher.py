"""Dispatching events: the `EventDispatcher` dependency and the standalone
``event_dispatcher``.

An event is published to ``<source>.events`` (topic) with routing key =
event type and body = the serialised event data, persistent, priority 0,
confirmed, not mandatory (an event nobody subscribed to is dropped by the
broker, as in nameko). A dispatcher in a service sends the worker's context
data as ``nameko.*`` headers; the standalone one sends none.

Deliberate differences from nameko 2.14:

* `EventDispatcher` computes the headers when ``dispatch`` is called rather
  than when the dependency is injected (nameko 3 behaviour, same wire format).
* The standalone ``event_dispatcher`` declares the source's exchange before
  its first dispatch (once per connection), unless ``DECLARE_EVENT_EXCHANGES``
  is false. nameko's never declared it, so dispatching for a source that had
  not started yet failed with 404 NOT_FOUND (SPEC 13.20).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from nameko import serialization
from nameko._concurrency import Lock
from nameko._events.exchange import declares_event_exchanges, get_event_exchange
from nameko._messaging.connection import amqp_uri, config_with_uri
from nameko._messaging.core_publisher import ConfirmWait
from nameko._messaging.core_publisher import Publisher as CorePublisher
from nameko._messaging.entities import exchange_name
from nameko._messaging.publisher import Publisher
from nameko._tracing import tracing_for
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY

__all__ = ["EventDispatcher", "StandaloneDispatcher", "event_dispatcher"]

T = TypeVar("T")


class EventDispatcher(Publisher):
    """Injects ``dispatch(event_type, event_data)``. ``options`` go to the core
    publisher (``use_confirms``, ``serializer``, ``delivery_mode``, ...).

    ``dispatch`` sends the event and returns without waiting for the broker's
    confirm; the worker waits for all its events' confirms after the method
    returns and before its result is reported (RPC reply sent, triggering
    message acked). So nothing is acknowledged while one of its events may
    still be lost, and a nacked event (or one whose connection was lost and
    whose re-publish failed) fails the worker with that error. This spares a
    round trip per event (nameko waits for each confirm inside ``dispatch``);
    ``pipeline=False`` restores that, for a method that must see a failed
    dispatch where it dispatches. ``mandatory=True`` events are always
    confirmed inside ``dispatch`` (an unroutable event raises there)."""

    def __init__(self, *args: Any, pipeline: bool = True, **options: Any) -> None:
        super().__init__(*args, **options)
        self.pipeline = pipeline

    def setup(self) -> None:
        config = self.container.config
        self.exchange = get_event_exchange(self.container.service_name, config)
        if declares_event_exchanges(config) and self.exchange not in self.declare:
            self.declare.append(self.exchange)
        super().setup()

    def get_dependency(self, worker_ctx: Any) -> Callable[[str, Any], Any]:
        if getattr(worker_ctx, "is_async", False) is True:  # not a stand-in's Mock
            return self._async_dispatch(worker_ctx)

        def dispatch(event_type: str, event_data: Any) -> None:
            if not self.pipeline:
                self.publish_for(
                    worker_ctx, event_data, exchange=self.exchange, routing_key=event_type
                )
                return
            wait = self.publish_pipelined_for(
                worker_ctx, event_data, exchange=self.exchange, routing_key=event_type
            )
            worker_ctx.before_result(wait)

        return dispatch

    def _async_dispatch(self, worker_ctx: Any) -> Callable[[str, Any], Awaitable[None]]:
        """For an ``async def`` worker: ``await dispatch(...)`` returns once
        the event is confirmed (`nameko._aio.events`)."""

        async def dispatch(event_type: str, event_data: Any) -> None:
            options = {"exchange": self.exchange, "routing_key": event_type}
            if self.options.get("mandatory"):  # published in full: blocking
                from nameko._aio.bridge import in_executor  # asyncio only when awaited

                await in_executor(partial(self.publish_for, worker_ctx, event_data, **options))
                return
            from nameko._aio.events import confirmed

            await confirmed(self.publish_pipelined_for(worker_ctx, event_data, **options))

        return dispatch


def event_dispatcher(
    nameko_config: Mapping[str, Any] | None = None,
    *,
    pipeline: bool = False,
    max_in_flight: int = 1000,
    **kwargs: Any,
) -> StandaloneDispatcher:
    """``dispatch(service_name, event_type, event_data)`` for code outside services.

    The serializer comes from the config unless ``serializer`` is given; other
    ``kwargs`` are core publisher options. nameko 3's ``uri=`` is accepted
    instead of (or on top of) a config dict. ``pipeline=True``: see
    `StandaloneDispatcher`.
    """
    config = config_with_uri(nameko_config, kwargs.pop("uri", None))
    serializer = serialization.setup(config).serializer  # also registers SERIALIZERS
    serializer = kwargs.pop("serializer", None) or serializer
    kwargs.setdefault("ssl", config.get(AMQP_SSL_CONFIG_KEY))
    kwargs.setdefault("login_method", config.get(LOGIN_METHOD_CONFIG_KEY))
    publisher = CorePublisher(amqp_uri(config), serializer=serializer, **kwargs)
    return StandaloneDispatcher(publisher, config, pipeline, max_in_flight)


class StandaloneDispatcher:
    """``dispatch(service_name, event_type, event_data)``, thread-safe.

    By default each call returns once the broker confirmed the event, as in
    nameko. With ``pipeline=True`` a call returns once the event is sent and
    `flush` is the confirm point: it returns when every event dispatched so
    far is confirmed, and raises the first failure among them (after waiting
    for all). At most ``max_in_flight`` events wait for a confirm: one more
    first waits for the oldest (and raises its failure, if any). Used as a
    context manager, it flushes on exit.
    """

    def __init__(
        self,
        publisher: CorePublisher,
        config: Mapping[str, Any],
        pipeline: bool,
        max_in_flight: int,
    ) -> None:
        self._publisher, self._config = publisher, config
        self._declare = declares_event_exchanges(config)
        self._tracing = tracing_for(config)  # TRACING on: a span per event
        self.pipeline, self.max_in_flight = pipeline, max(1, max_in_flight)
        self._waits: deque[Callable[[], None]] = deque()
        self._lock = Lock()

    def __call__(self, service_name: str, event_type: str, event_data: Any) -> None:
        if not self.pipeline:
            self.dispatch_and_wait(service_name, event_type, event_data)
            return
        wait = self.dispatch_pipelined(service_name, event_type, event_data)
        with self._lock:
            self._waits.append(wait)
            oldest = self._waits.popleft() if len(self._waits) > self.max_in_flight else None
        if oldest is not None:
            oldest()

    def dispatch_and_wait(self, service_name: str, event_type: str, event_data: Any) -> None:
        """Dispatch and wait for the confirm, whatever ``pipeline`` says."""
        self._send(self._publisher.publish, service_name, event_type, event_data)

    def dispatch_pipelined(
        self, service_name: str, event_type: str, event_data: Any
    ) -> ConfirmWait:
        """Dispatch; the confirm is waited for by the returned ``wait()`` (not
        by `flush`: the caller owns it)."""
        return self._send(self._publisher.publish_pipelined, service_name, event_type, event_data)

    def _send(
        self, publish: Callable[..., T], service_name: str, event_type: str, event_data: Any
    ) -> T:
        options = self._options(service_name, event_type)
        if self._tracing is None:
            return publish(event_data, **options)
        headers: dict[str, Any] = {}  # a producer span's traceparent (the user's span's child)
        options["extra_headers"] = headers
        exchange = exchange_name(options["exchange"])
        send = partial(publish, event_data, **options)
        result: T = self._tracing.publish_message(send, headers, exchange, event_type)
        return result

    def _options(self, service_name: str, event_type: str) -> dict[str, Any]:
        exchange = get_event_exchange(service_name, self._config)
        return {
            "exchange": exchange,
            "routing_key": event_type,
            "declare": [exchange] if self._declare else [],
        }

    def flush(self) -> None:
        """Wait for the confirms of every event dispatched so far."""
        with self._lock:
            waits, self._waits = self._waits, deque()
        failure: Exception | None = None
        for wait in waits:
            try:
                wait()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def __enter__(self) -> StandaloneDispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()
