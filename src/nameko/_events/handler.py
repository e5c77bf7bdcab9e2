"""``@event_handler(source_service, event_type, ...)``: the event entrypoint.

An `EventHandler` is a `Consumer` of a queue bound to ``<source>.events``
with the event type as binding key; queue name and flags follow the handler
type (SPEC 4.4, computed by `nameko._protocol.names.event_handler_queue`):

* ``SERVICE_POOL``: one queue per service and method, so each event reaches
  one instance of every subscribing service;
* ``SINGLETON``: one queue per source and event type, so each event reaches
  one handler in the whole cluster;
* ``BROADCAST``: one queue per handler instance (``broadcast_identifier``),
  so every instance gets every event.

Workers get ``(event_data,)`` and the dispatcher's context data; the message
is acked after the worker (requeue on error: see `nameko._messaging.consume`).

Deliberate differences from nameko 2.14:

* Configuration errors are raised when the container binds the handler,
  i.e. from ``ServiceContainer(...)`` as in nameko (which found them by
  evaluating every extension property at construction, something our
  extension model does not do). `EventHandlerConfigurationError` for a
  ``BROADCAST`` handler with ``reliable_delivery=True`` and the default
  ``broadcast_identifier``, and for an unknown ``handler_type``.
* ``handler_type`` is compared by value, not identity (SPEC 13.11), so an
  equal string from a config file works.
* ``QUEUE_TYPE: quorum`` (the service's, `nameko._protocol.queues`) makes
  ``SERVICE_POOL`` and ``SINGLETON`` queues quorum queues; broadcast
  queues, and the auto-delete queues of ``reliable_delivery=False``
  handlers, stay classic.
* The event exchange is not declared when ``DECLARE_EVENT_EXCHANGES`` is
  false; the queue is still bound to it, which fails at start if nobody has
  declared it (as in nameko).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nameko._broker.base import Binding, Entity, Queue
from nameko._events.exchange import declares_event_exchanges, get_event_exchange
from nameko._messaging.consume import Consumer
from nameko._protocol.names import BROADCAST, SERVICE_POOL, SINGLETON, event_handler_queue
from nameko._protocol.queues import CLASSIC, queue_arguments, queue_type_for
from nameko._reliability.policy import RetryPolicy
from nameko._runtime.extensions import ExpectedExceptions, Method, SensitiveArguments

if TYPE_CHECKING:
    from nameko._runtime.container import ServiceContainer

__all__ = [
    "BROADCAST",
    "SERVICE_POOL",
    "SINGLETON",
    "EventHandler",
    "EventHandlerConfigurationError",
    "event_handler",
]

HANDLER_TYPES = (SERVICE_POOL, SINGLETON, BROADCAST)


class EventHandlerConfigurationError(Exception):
    """An event handler was declared with options that can't work together."""


class EventHandler(Consumer):
    """Runs the decorated method for each ``event_type`` event of ``source_service``."""

    def __init__(
        self,
        source_service: str,
        event_type: str,
        handler_type: str = SERVICE_POOL,
        reliable_delivery: bool = True,
        requeue_on_error: bool = False,
        **kwargs: Any,
    ) -> None:
        self.source_service = source_service
        self.event_type = event_type
        self.handler_type = handler_type
        self.reliable_delivery = reliable_delivery
        super().__init__(None, requeue_on_error=requeue_on_error, **kwargs)

    @property
    def broadcast_identifier(self) -> str | None:
        """What makes a ``BROADCAST`` handler's queue its own (None otherwise).

        The default, a new random id each time the handler is set up, only
        suits ``reliable_delivery=False``: a restarted instance gets a new
        queue and the old one (with any events it held) is abandoned.
        Override it with something stable per instance (e.g. the host name)
        to use reliable delivery with broadcast handlers.
        """
        if self.handler_type != BROADCAST:
            return None
        if self.reliable_delivery:
            raise EventHandlerConfigurationError(
                "You are using the default broadcast identifier which is not compatible "
                "with reliable delivery: set reliable_delivery=False, or override "
                "broadcast_identifier with an identifier that is stable per instance."
            )
        return uuid.uuid4().hex

    def bind(self, container: ServiceContainer, method_name: str) -> EventHandler:  # type: ignore[override]  # as `Entrypoint.bind`
        instance = super().bind(container, method_name)
        instance.check_configuration()
        return instance

    def check_configuration(self) -> None:
        """Raise `EventHandlerConfigurationError` for an unusable declaration."""
        if self.handler_type not in HANDLER_TYPES:
            raise EventHandlerConfigurationError(
                f"Unknown handler_type {self.handler_type!r}: use one of {', '.join(HANDLER_TYPES)}"
            )
        self.broadcast_identifier  # noqa: B018 - raises for an unusable broadcast handler

    def get_topology(self) -> tuple[str, list[Entity]]:
        config = self.container.config
        spec = event_handler_queue(
            self.handler_type,
            self.source_service,
            self.event_type,
            self.container.service_name,
            self.method_name,
            reliable_delivery=self.reliable_delivery,
            broadcast_identifier=self.broadcast_identifier,
        )
        # broadcast queues are one per instance: they stay classic (QUEUE_TYPE)
        queue_type = (
            CLASSIC
            if self.handler_type == BROADCAST
            else queue_type_for(config, self.container.service_name)
        )
        self.queue = Queue(
            spec.name,
            durable=spec.durable,
            exclusive=spec.exclusive,
            auto_delete=spec.auto_delete,
            arguments=queue_arguments(queue_type, auto_delete=spec.auto_delete),
        )
        entities: list[Entity] = []
        if declares_event_exchanges(config):
            entities.append(get_event_exchange(self.source_service, config))
        entities += [self.queue, Binding(spec.name, spec.exchange, spec.routing_key)]
        return spec.name, entities


def event_handler(
    source_service: str,
    event_type: str,
    handler_type: str = SERVICE_POOL,
    reliable_delivery: bool = True,
    requeue_on_error: bool = False,
    *,
    retry: RetryPolicy | int | bool | None = None,
    expected_exceptions: ExpectedExceptions = (),
    sensitive_arguments: SensitiveArguments = (),
    **kwargs: Any,
) -> Callable[[Method], Method]:
    """Run the decorated method, with the event's payload as its one
    argument, for each ``event_type`` event that ``source_service`` dispatches.

    Args:
        source_service: the name of the service that dispatches the event.
        event_type: the event's type, as given to the dispatcher.
        handler_type: ``"service_pool"`` (the default: each event is handled
            once per service, by one of its instances), ``"singleton"``
            (once in the whole cluster, whatever the service) or
            ``"broadcast"`` (by every instance); constants in `nameko.events`.
        reliable_delivery: keep the handler's queue, and the events in it,
            while no instance runs (False: the queue goes with the last
            instance; required for broadcast handlers unless
            ``broadcast_identifier`` is overridden).
        requeue_on_error: put an event whose handler raised back on the
            queue (once; an event that fails again is dead-lettered).
        retry: a `nameko.reliability.RetryPolicy` (or a number of attempts):
            a failed event is retried later through the broker, then
            dead-lettered to ``dlq-<service>.<method>``.
        expected_exceptions: exception classes the method raises on purpose:
            logged at WARNING instead of ERROR.
        sensitive_arguments: argument names (or paths inside them, such as
            ``"payload.password"``) masked wherever the call is logged.
        **kwargs: the deprecated ``sensitive_variables``, and options of
            subclasses.
    """
    return EventHandler.decorator(
        source_service,
        event_type,
        handler_type,
        reliable_delivery,
        requeue_on_error,
        retry=retry,
        expected_exceptions=expected_exceptions,
        sensitive_arguments=sensitive_arguments,
        **kwargs,
    )
