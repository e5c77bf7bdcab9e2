"""The `Publisher` dependency: ``self.publish(msg, **kwargs)`` from a worker.

It publishes on the container's shared broker connection through the core
`nameko._messaging.core_publisher.Publisher` (public as
`nameko.amqp.publish.Publisher`), so per-call options (``routing_key``,
``exchange``, ``headers``, ``priority``, ``expiration``, ``mandatory``,
``use_confirms``, ...) mean what they mean there. The exchange and the
``declare`` list are declared once at setup. ``publish`` returns once the
broker confirmed the message (unless ``use_confirms=False``).

Deliberate difference from nameko 2.14: the worker's context headers are
computed when ``publish`` is called, not when the dependency is injected
(nameko 3 does the same; the wire format is unchanged), so changes a worker
makes to ``worker_ctx.data`` before publishing travel with the message. A
caller's own ``extra_headers`` are merged over them instead of clashing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from nameko._messaging.connection import BrokerConnection, amqp_uri
from nameko._messaging.core_publisher import ConfirmWait
from nameko._messaging.core_publisher import Publisher as CorePublisher
from nameko._messaging.entities import declare_once, entities_of, exchange_name
from nameko._protocol.headers import encode_context_headers
from nameko._runtime.extensions import DependencyProvider
from nameko._tracing import tracing_for
from nameko.constants import AMQP_SSL_CONFIG_KEY, HEADER_PREFIX, LOGIN_METHOD_CONFIG_KEY

__all__ = ["HeaderEncoder", "Publisher"]

T = TypeVar("T")


class HeaderEncoder:
    """``nameko.<key>`` headers from a worker's context data (None values are
    dropped with a `UserWarning`)."""

    header_prefix = HEADER_PREFIX

    def get_message_headers(self, worker_ctx: Any) -> dict[str, Any]:
        return encode_context_headers(worker_ctx.context_data, self.header_prefix)


class Publisher(DependencyProvider, HeaderEncoder):
    """Injects ``publish(msg, **kwargs)``.

    ``exchange``: where messages go (None: the default exchange, so give
    ``routing_key=<queue name>``); ``declare``: more exchanges/queues to
    declare at setup; ``options``: core `nameko.amqp.publish.Publisher`
    options. ``queue`` is deprecated as in nameko: its exchange is used when
    ``exchange`` is None and the queue is declared.
    """

    publisher_cls = CorePublisher
    connection = BrokerConnection()

    def __init__(
        self,
        exchange: Any = None,
        queue: Any = None,
        declare: Iterable[Any] | None = None,
        **options: Any,
    ) -> None:
        self.exchange = exchange
        self.queue = queue
        self.declare = list(declare or [])
        if queue is not None:
            warnings.warn(
                "The `queue` argument of Publisher is deprecated: give `exchange` "
                "(and `declare` for the queue)",
                DeprecationWarning,
                stacklevel=2,
            )
            if exchange is None:
                self.exchange = getattr(queue, "exchange", None)
            self.declare.append(queue)
        if self.exchange is not None:
            self.declare.append(self.exchange)
        self.options = options
        self.publisher: CorePublisher | None = None
        self._stopped = False
        self._tracing: Any = None  # set up from the config: TRACING on, a span per message

    @property
    def amqp_uri(self) -> str:
        return amqp_uri(self.container.config)

    @property
    def serializer(self) -> str:
        return self.options.get("serializer") or self.container.serializer

    def setup(self) -> None:
        self._stopped = False
        self.connection.register_provider(self)
        declare_once(self.connection.broker, entities_of(self.declare))
        config = self.container.config
        self._tracing = tracing_for(config)
        options = dict(self.options)
        options.pop("serializer", None)
        self.publisher = self.publisher_cls(
            self.amqp_uri,
            serializer=self.serializer,
            exchange=self.exchange,
            declare=self.declare,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            broker=self._broker,
            **options,
        )

    def _broker(self) -> Any:
        if self._stopped:
            # e.g. a worker abandoned by `kill`: don't reopen the connection
            raise RuntimeError(f"{self!r} is stopped and can no longer publish")
        return self.connection.broker

    def stop(self) -> None:
        self._stopped = True
        self.connection.unregister_provider(self)

    def kill(self) -> None:
        self._stopped = True
        self.connection.unregister_provider(self)

    def get_dependency(self, worker_ctx: Any) -> Callable[..., None]:
        def publish(msg: Any, **kwargs: Any) -> None:
            self.publish_for(worker_ctx, msg, **kwargs)

        return publish

    def publish_for(self, worker_ctx: Any, msg: Any, **kwargs: Any) -> None:
        """Publish ``msg`` with ``worker_ctx``'s context headers (computed now)."""
        kwargs = self._with_headers(worker_ctx, kwargs)
        publish = self._core_publisher().publish
        if self._tracing is None:
            publish(msg, **kwargs)
        else:
            self._traced(partial(publish, msg, **kwargs), kwargs)

    def publish_pipelined_for(self, worker_ctx: Any, msg: Any, **kwargs: Any) -> ConfirmWait:
        """`publish_for` without waiting for the confirm: returns ``wait()``."""
        kwargs = self._with_headers(worker_ctx, kwargs)
        publish = self._core_publisher().publish_pipelined
        if self._tracing is None:
            return publish(msg, **kwargs)
        return self._traced(partial(publish, msg, **kwargs), kwargs)

    def _traced(self, send: Callable[[], T], kwargs: dict[str, Any]) -> T:
        """``send()`` in a producer span whose traceparent goes in the headers."""
        exchange = exchange_name(kwargs.get("exchange") or self.exchange)
        routing_key = kwargs.get("routing_key") or self.options.get("routing_key") or ""
        headers = kwargs["extra_headers"]
        result: T = self._tracing.publish_message(send, headers, exchange, routing_key)
        return result

    def _with_headers(self, worker_ctx: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        extra_headers = {
            **self.get_message_headers(worker_ctx),
            **(kwargs.pop("extra_headers", None) or {}),
        }
        return {**kwargs, "extra_headers": extra_headers}

    def _core_publisher(self) -> CorePublisher:
        if self.publisher is None:
            raise RuntimeError(f"{self!r} publishes only once its container is set up")
        return self.publisher
