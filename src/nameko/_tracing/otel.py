"""The OpenTelemetry side of tracing: spans, and the W3C headers they travel in.

Only imported once a config has ``TRACING`` on (`nameko._tracing.tracing_for`).
Every span comes from one tracer of the global ``TracerProvider``
(``trace.get_tracer("nameko")``, a proxy until the user sets a provider),
and the trace context is written and read by the global propagator
(``propagate.inject``/``extract``: W3C ``traceparent``/``tracestate`` and
``baggage`` unless ``OTEL_PROPAGATORS`` says otherwise).

Spans (docs/architecture.md D27):

* the worker (`WorkerSpans`, a worker observer): parent = the context the
  message or request carried; kind SERVER for ``@rpc``, CONSUMER for event
  handlers and ``@consume``, INTERNAL otherwise (an ``@http`` worker is the
  child of its request's span). Current while the worker runs, so what it
  publishes and logs belongs to it.
* publishing (`Tracing.publish_*`): a PRODUCER span around the publish,
  whose context goes out in the message's headers.
* an HTTP request (`Tracing.serve_http`): a SERVER span from routing to the
  response, parent = the request's ``traceparent`` header.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from nameko._redaction import redact_query
from nameko._tracing import HTTP_ROUTE_ENVIRON_KEY, logs

__all__ = ["Tracing", "WorkerSpans", "shared_tracing"]

T = TypeVar("T")
Attributes = dict[str, AttributeValue]

_SPAN_KEY = "_nameko_trace_span"  # on the WorkerContext, between start and finish
_ROOT = otel_context.Context()  # the parent of a worker that carried no trace context
_PROCESS: Attributes = {"messaging.system": "rabbitmq", "messaging.operation.type": "process"}
_RPC_PROCESS: Attributes = {**_PROCESS, "rpc.system": "nameko"}


@lru_cache(maxsize=1)
def shared_tracing() -> Tracing:
    """One per process: spans go to the global provider whoever asks."""
    return Tracing()


def _version() -> str:
    try:
        return importlib.metadata.version("shimeji")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Tracing:
    """What the messaging and web code call when tracing is on."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("nameko", _version())
        self.observer = WorkerSpans(self.tracer)

    # -- producer spans ---------------------------------------------------------

    def publish_request(
        self,
        send: Callable[[], T],
        headers: dict[str, Any],
        exchange: str,
        routing_key: str,
        correlation_id: str,
    ) -> T:
        """An RPC request: ``send()`` publishes it with ``headers``."""
        attributes = _sending(exchange, routing_key)
        attributes["messaging.message.conversation_id"] = correlation_id
        return self._produce(f"send {routing_key}", attributes, headers, send)

    def publish_reply(
        self,
        send: Callable[[], T],
        headers: dict[str, Any],
        exchange: str,
        request_routing_key: str,
        correlation_id: str | None,
    ) -> T:
        """An RPC reply to a request sent to ``request_routing_key``."""
        attributes = _sending(exchange, None)
        if correlation_id:
            attributes["messaging.message.conversation_id"] = correlation_id
        return self._produce(f"reply {request_routing_key}", attributes, headers, send)

    def publish_message(
        self, send: Callable[[], T], headers: dict[str, Any], exchange: str, routing_key: str
    ) -> T:
        """An event, or a message of the ``Publisher`` dependency."""
        name = f"send {exchange or '(default)'} {routing_key}".rstrip()
        return self._produce(name, _sending(exchange, routing_key), headers, send)

    def _produce(
        self, name: str, attributes: Attributes, headers: dict[str, Any], send: Callable[[], T]
    ) -> T:
        span = self.tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attributes)
        propagate.inject(headers, context=trace.set_span_in_context(span))
        try:
            return send()
        except BaseException as exc:
            record_error(span, exc)
            raise
        finally:
            span.end()

    def current_carrier(self) -> dict[str, Any]:
        """The current context as headers (for a worker started elsewhere)."""
        carrier: dict[str, Any] = {}
        propagate.inject(carrier)
        return carrier

    # -- HTTP ---------------------------------------------------------------------

    def serve_http(self, environ: dict[str, Any], respond: Callable[[], T]) -> T:
        """The span of one HTTP request: ``respond()`` routes it and runs it."""
        parent = propagate.extract(environ, getter=_ENVIRON)
        method = environ.get("REQUEST_METHOD") or "GET"
        span = self.tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=_http_request(environ)
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            response = respond()
        except BaseException as exc:
            record_error(span, exc)
            raise
        else:
            _http_response(span, method, environ.get(HTTP_ROUTE_ENVIRON_KEY), response)
            return response
        finally:
            span.end()
            otel_context.detach(token)

    # -- nameko run -----------------------------------------------------------

    def describe_provider(self) -> str | None:
        """The global provider's class, or None while none is set."""
        provider = trace.get_tracer_provider()
        if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            return None
        return type(provider).__qualname__

    def flush(self) -> None:
        """Export what is buffered (``nameko run`` exiting)."""
        force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if force_flush is not None:
            force_flush()


class WorkerSpans:
    """The worker observer: a span per worker, current while it runs."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def worker_started(self, worker_ctx: Any) -> None:
        carrier = worker_ctx.trace_carrier
        parent = propagate.extract(carrier) if carrier else _ROOT
        kind, attributes = _worker_attributes(worker_ctx)
        name = f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}"
        span = self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        ids = span.get_span_context()
        log_token = logs.enter(
            logs.TraceIds(
                format(ids.trace_id, "032x") if ids.is_valid else "",
                format(ids.span_id, "016x") if ids.is_valid else "",
                worker_ctx.call_id,
            )
        )
        setattr(worker_ctx, _SPAN_KEY, (span, token, log_token))

    def worker_finished(self, worker_ctx: Any, result: Any, exc_info: Any) -> None:
        state = worker_ctx.__dict__.pop(_SPAN_KEY, None)
        if state is None:
            return
        span, token, log_token = state
        if exc_info is not None:
            record_error(span, exc_info[1])
        span.end()
        logs.leave(log_token)
        otel_context.detach(token)


def record_error(span: Span, exc: BaseException) -> None:
    """Status ERROR, an ``exception`` event, and ``error.type``."""
    span.record_exception(exc)
    span.set_attribute("error.type", _qualified_name(type(exc)))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _qualified_name(cls: type) -> str:
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _sending(exchange: str, routing_key: str | None) -> Attributes:
    # few attributes: each costs the SDK about 1.5 us per span (docs D27)
    attributes: Attributes = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.destination.name": exchange or "(default)",
    }
    if routing_key:
        attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
    return attributes


def _worker_attributes(worker_ctx: Any) -> tuple[SpanKind, Attributes]:
    """The span kind and attributes of a worker, from what its entrypoint is
    (duck typing: this runtime-level module can't import the entrypoints)."""
    entrypoint = worker_ctx.entrypoint
    service, method = worker_ctx.service_name, entrypoint.method_name
    attributes: Attributes = {
        "nameko.service": service,
        "nameko.entrypoint": method,
        "nameko.call_id": worker_ctx.call_id,
        "nameko.call_id_stack": worker_ctx.call_id_stack,
    }
    if hasattr(entrypoint, "rpc_consumer"):
        attributes.update(_RPC_PROCESS)
        attributes["rpc.service"], attributes["rpc.method"] = service, method
        return SpanKind.SERVER, attributes
    if hasattr(entrypoint, "requeue_on_error"):  # @event_handler, @consume
        attributes.update(_PROCESS)
        source = getattr(entrypoint, "source_service", None)
        if source is not None:
            attributes["messaging.destination.name"] = f"{source}.events"
            attributes["messaging.rabbitmq.destination.routing_key"] = entrypoint.event_type
        return SpanKind.CONSUMER, attributes
    return SpanKind.INTERNAL, attributes


def _http_request(environ: Mapping[str, Any]) -> Attributes:
    attributes: Attributes = {
        "http.request.method": environ.get("REQUEST_METHOD") or "GET",
        "url.path": environ.get("PATH_INFO") or "/",
        "url.scheme": environ.get("wsgi.url_scheme") or "http",
    }
    optional = {
        "url.query": redact_query(environ.get("QUERY_STRING") or ""),
        "server.address": environ.get("SERVER_NAME"),
        "client.address": environ.get("REMOTE_ADDR"),
        "user_agent.original": environ.get("HTTP_USER_AGENT"),
    }
    attributes.update((key, value) for key, value in optional.items() if value)
    port = environ.get("SERVER_PORT")
    if port and str(port).isdigit():
        attributes["server.port"] = int(port)
    return attributes


def _http_response(span: Span, method: str, route: str | None, response: Any) -> None:
    status = getattr(response, "status_code", None) or getattr(response, "code", None)
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
        if status >= 500:  # a 4xx is the client's error, not the server span's
            span.set_status(Status(StatusCode.ERROR))


class _EnvironGetter(Getter[Mapping[str, Any]]):
    """Headers from a WSGI environ (``traceparent`` is ``HTTP_TRACEPARENT``)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_ENVIRON = _EnvironGetter()
