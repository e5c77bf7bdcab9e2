"""Shared by the tracing tests: an OpenTelemetry SDK provider collecting
spans in memory, a raw spy on exchanges, and the services of a 3-hop call
(HTTP gateway -> a -> b -> event handled by c)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from nameko._broker import connect
from nameko._broker.base import Binding, Delivery, Queue
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http
from tests.waiting import wait_until

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
_installed = threading.Lock()

log = logging.getLogger("tests.traced")


def install_provider() -> None:
    """The global provider, once per process (OpenTelemetry allows one)."""
    with _installed:
        if trace.get_tracer_provider() is not _PROVIDER:
            trace.set_tracer_provider(_PROVIDER)


def collected_spans() -> Iterator[InMemorySpanExporter]:
    """For a ``spans`` fixture: the exporter, emptied before and after."""
    install_provider()
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def wait_for_spans(exporter: InMemorySpanExporter, *names: str) -> dict[str, ReadableSpan]:
    """The finished spans by name once all of ``names`` are there."""

    def by_name() -> dict[str, ReadableSpan]:
        return {span.name: span for span in exporter.get_finished_spans()}

    wait_until(lambda: set(names) <= set(by_name()), timeout=10, what=f"spans {names}")
    return by_name()


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


class Spy:
    """Every message published to some exchanges, raw (headers as sent)."""

    def __init__(self, uri: str, *exchanges: str) -> None:
        self.broker = connect(uri)
        self.deliveries: list[Delivery] = []
        for exchange in exchanges:
            queue = f"spy-{uuid.uuid4()}"
            self.broker.consume(
                queue,
                self.deliveries.append,
                no_ack=True,
                topology=[Queue(queue, exclusive=True), Binding(queue, exchange, "#")],
            )

    def headers(self, routing_key: str) -> dict:
        found = [d for d in list(self.deliveries) if d.routing_key == routing_key]
        assert found, f"no message seen for {routing_key}"
        return dict(found[-1].properties.headers or {})

    def reply_headers(self) -> list[dict]:
        """Replies: a correlation id, nowhere to reply to."""
        return [
            dict(d.properties.headers or {})
            for d in list(self.deliveries)
            if d.properties.correlation_id and not d.properties.reply_to
        ]

    def close(self) -> None:
        self.broker.close()


@contextmanager
def spying(uri: str, *exchanges: str) -> Iterator[Spy]:
    spy = Spy(uri, *exchanges)
    try:
        yield spy
    finally:
        spy.close()


class Gateway:
    name = "gateway"
    a = RpcProxy("a")

    @http("GET", "/hello/<name>")
    def hello(self, request, name):
        return self.a.greet(name)

    @http("GET", "/broken")
    def broken(self, request):
        raise RuntimeError("gateway broke")


class A:
    name = "a"
    b = RpcProxy("b")

    @rpc
    def greet(self, name):
        log.info("greeting %s", name)
        return f"hello {self.b.shout(name)}"

    @rpc
    def fail(self):
        raise ValueError("a failed")


class B:
    name = "b"
    dispatch = EventDispatcher()

    @rpc
    def shout(self, name):
        self.dispatch("shouted", name)
        return name.upper()


class C:
    name = "c"
    seen: list = []

    @event_handler("b", "shouted")
    def on_shout(self, name):
        C.seen.append(name)


HOPS = (
    "GET /hello/<name>",
    "gateway.hello",
    "send a.greet",
    "a.greet",
    "send b.shout",
    "b.shout",
    "send b.events shouted",
    "c.on_shout",
    "reply b.shout",
    "reply a.greet",
)


def assert_three_hops(found: dict[str, ReadableSpan], root_parent: int | None = None) -> None:
    """One trace; each span the child of the one before it on the call's path."""
    chain = [
        ("gateway.hello", "GET /hello/<name>"),
        ("send a.greet", "gateway.hello"),
        ("a.greet", "send a.greet"),
        ("send b.shout", "a.greet"),
        ("b.shout", "send b.shout"),
        ("send b.events shouted", "b.shout"),
        ("c.on_shout", "send b.events shouted"),
        ("reply b.shout", "b.shout"),
        ("reply a.greet", "a.greet"),
    ]
    for child, parent in chain:
        assert parent_of(found[child]) == found[parent].context.span_id, (child, parent)
    assert parent_of(found["GET /hello/<name>"]) == root_parent
    assert len({found[name].context.trace_id for name in HOPS}) == 1
