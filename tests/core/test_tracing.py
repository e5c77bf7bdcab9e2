"""Traces (docs D27) on the in-memory broker: one trace from an
HTTP request through two RPC hops and an event, W3C headers on the wire,
errors on spans, trace ids in logs, and nothing at all with tracing off."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
import requests
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from nameko._broker.base import Queue
from nameko._tracing import tracing_feature
from nameko._tracing.otel import shared_tracing
from nameko.exceptions import ConfigurationError, RemoteError
from nameko.messaging import Publisher, consume
from nameko.rpc import RpcProxy, ServiceRpc, rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.tracing import JsonFormatter, TraceContextFilter
from tests.tracing_support import (
    HOPS,
    A,
    B,
    C,
    Gateway,
    assert_three_hops,
    collected_spans,
    parent_of,
    spying,
    wait_for_spans,
)
from tests.waiting import wait_until

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans():
    yield from collected_spans()


@pytest.fixture
def traced(memory_config, web_config, runner_factory):
    """The 3-hop services, traced, on this test's memory broker."""
    config = {**memory_config, "WEB_SERVER_ADDRESS": web_config["WEB_SERVER_ADDRESS"]}
    config["TRACING"] = True
    C.seen = []

    def start(tracing=True):
        runner = runner_factory({**config, "TRACING": tracing}, Gateway, A, B, C)
        runner.start()
        return config

    return start


def url(config, path):
    return f"http://{config['WEB_SERVER_ADDRESS']}{path}"


def test_http_two_rpc_hops_and_an_event_are_one_trace(traced, spans):
    config = traced()
    with spying(config["AMQP_URI"], "nameko-rpc", "b.events") as spy:
        response = requests.get(url(config, "/hello/ann"), headers={"traceparent": TRACEPARENT})
        assert response.text == "hello ANN"
        found = wait_for_spans(spans, *HOPS)
        wait_until(lambda: len(spy.reply_headers()) == 2)
        request_headers = spy.headers("b.shout")
        event_headers = spy.headers("shouted")
        replies = spy.reply_headers()
    assert_three_hops(found, root_parent=int(TRACEPARENT.split("-")[2], 16))
    assert format(found["a.greet"].context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    # the wire: W3C names, never nameko.-prefixed, the producer span's id in them
    for headers, producer in (
        (request_headers, "send b.shout"),
        (event_headers, "send b.events shouted"),
    ):
        span_id = format(found[producer].context.span_id, "016x")
        assert headers["traceparent"].split("-")[2] == span_id
        assert not any(key.startswith("nameko.trace") for key in headers)
    assert all("traceparent" in headers for headers in replies)
    assert {headers["traceparent"].split("-")[2] for headers in replies} == {
        format(found[name].context.span_id, "016x") for name in ("reply a.greet", "reply b.shout")
    }


def test_span_kinds_and_attributes(traced, spans):
    config = traced()
    requests.get(url(config, "/hello/bo"))
    found = wait_for_spans(spans, *HOPS)
    http_span, rpc_span = found["GET /hello/<name>"], found["b.shout"]
    assert http_span.kind is SpanKind.SERVER
    assert http_span.attributes["http.route"] == "/hello/<name>"
    assert http_span.attributes["http.response.status_code"] == 200
    assert found["gateway.hello"].kind is SpanKind.INTERNAL
    assert found["send b.shout"].kind is SpanKind.PRODUCER
    assert rpc_span.kind is SpanKind.SERVER
    assert found["c.on_shout"].kind is SpanKind.CONSUMER
    attributes = rpc_span.attributes
    assert attributes["nameko.service"] == "b"
    assert attributes["nameko.entrypoint"] == "shout"
    assert attributes["messaging.system"] == "rabbitmq"
    assert attributes["rpc.method"] == "shout"
    stack = found["c.on_shout"].attributes["nameko.call_id_stack"]
    assert stack[-1] == found["c.on_shout"].attributes["nameko.call_id"]
    assert list(stack[:3]) == [
        found[name].attributes["nameko.call_id"] for name in ("gateway.hello", "a.greet", "b.shout")
    ]
    event = found["send b.events shouted"].attributes
    assert event["messaging.destination.name"] == "b.events"
    assert event["messaging.rabbitmq.destination.routing_key"] == "shouted"


def test_the_query_attribute_masks_secret_values(traced, spans):
    config = traced()
    requests.get(url(config, "/hello/bo?access_token=Tok-1234&lang=en&sig=Sig-5678"))
    http_span = wait_for_spans(spans, *HOPS)["GET /hello/<name>"]
    query = http_span.attributes["url.query"]
    assert query == "access_token=********&lang=en&sig=********"
    spans.clear()
    assert requests.get(url(config, "/hello/cy")).text == "hello CY"
    assert "url.query" not in wait_for_spans(spans, *HOPS)["GET /hello/<name>"].attributes


def test_errors_are_recorded_on_spans(traced, spans):
    config = traced()
    assert requests.get(url(config, "/broken")).status_code == 500
    with ClusterRpcProxy(config) as cluster, pytest.raises(RemoteError):
        cluster.a.fail()
    found = wait_for_spans(spans, "GET /broken", "gateway.broken", "a.fail", "send a.fail")
    for name in ("GET /broken", "gateway.broken", "a.fail"):
        assert found[name].status.status_code is StatusCode.ERROR, name
    failed = found["a.fail"]
    assert failed.attributes["error.type"] == "ValueError"
    (event,) = [e for e in failed.events if e.name == "exception"]
    assert event.attributes["exception.message"] == "a failed"
    assert found["send a.fail"].status.status_code is StatusCode.UNSET  # publishing went fine
    assert parent_of(found["a.fail"]) == found["send a.fail"].context.span_id


def test_a_standalone_client_continues_the_callers_span(traced, spans):
    config = traced()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("script") as script, ClusterRpcProxy(config) as cluster:
        assert cluster.a.greet("cy") == "hello CY"
    found = wait_for_spans(spans, "send a.greet", "a.greet", "b.shout")
    assert parent_of(found["send a.greet"]) == script.get_span_context().span_id
    assert found["b.shout"].context.trace_id == script.get_span_context().trace_id


def test_tracing_off_sends_no_trace_headers_and_makes_no_spans(traced, spans):
    config = traced(tracing=False)
    with spying(config["AMQP_URI"], "nameko-rpc", "b.events") as spy:
        requests.get(url(config, "/hello/di"), headers={"traceparent": TRACEPARENT})
        wait_until(lambda: C.seen == ["di"])
        wait_until(lambda: len(spy.reply_headers()) == 2)
        seen = [dict(d.properties.headers or {}) for d in spy.deliveries]
    assert not [key for headers in seen for key in headers if "trace" in key]
    assert spans.get_finished_spans() == ()


class Forwarder:
    name = "forwarder"
    a = RpcProxy("a")

    @rpc
    def forward(self, name):
        return self.a.fail() if name == "fail" else self.a.greet(name)


@pytest.mark.parametrize("tracing", [True, False])
def test_trace_headers_are_never_forwarded_as_context_data(
    memory_config, container_factory, spans, tracing
):
    """A nameko 2.14 peer forwards a traceparent it got as
    ``nameko.traceparent``; that one is a parent too, and never goes on."""
    config = {**memory_config, "TRACING": tracing}
    for cls in (Forwarder, A, B):
        container_factory(cls, config).start()
    with spying(config["AMQP_URI"], "nameko-rpc") as spy:
        with ClusterRpcProxy(memory_config, context_data={"traceparent": TRACEPARENT}) as cluster:
            assert cluster.forwarder.forward("ed") == "hello ED"
        onward = spy.headers("a.greet")
    assert "nameko.traceparent" not in onward
    assert ("traceparent" in onward) is tracing
    if tracing:
        found = wait_for_spans(spans, "forwarder.forward")
        assert (
            format(found["forwarder.forward"].context.trace_id, "032x") == TRACEPARENT.split("-")[1]
        )


class Relabels:
    """Reads its parent from context data and sends its own, as
    instrumentation written for nameko 3 does (opentelemetry-instrumentation-nameko)."""

    name = "relabels"
    a = ServiceRpc("a")
    seen: list = []

    @rpc
    def forward(self, name, replace):
        Relabels.seen.append(self.a.context_data.get("traceparent"))
        if replace:
            self.a.context_data["traceparent"] = OTHER_TRACEPARENT
        return self.a.greet(name)


OTHER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"


@pytest.mark.parametrize("replace", [False, True])
def test_context_data_holds_the_received_traceparent_and_forwards_only_a_new_one(
    memory_config, container_factory, replace
):
    Relabels.seen = []
    for cls in (Relabels, A, B):
        container_factory(cls, memory_config).start()
    with spying(memory_config["AMQP_URI"], "nameko-rpc") as spy:
        with ClusterRpcProxy(memory_config, context_data={"traceparent": TRACEPARENT}) as cluster:
            assert cluster.relabels.forward("ed", replace) == "hello ED"
        onward = spy.headers("a.greet")
    assert Relabels.seen == [TRACEPARENT]  # what the worker received
    assert onward.get("nameko.traceparent") == (OTHER_TRACEPARENT if replace else None)


class Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(TraceContextFilter())
        self.setFormatter(JsonFormatter(fields=["thread"]))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)
        self.lines.append(self.format(record))


def test_logs_in_a_worker_carry_its_trace_and_call_ids(memory_config, container_factory, spans):
    handler = Logs()
    logger = logging.getLogger("tests.traced")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        config = {**memory_config, "TRACING": True}
        for cls in (A, B):
            container_factory(cls, config).start()
        with ClusterRpcProxy(config) as cluster:
            cluster.a.greet("fay")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    found = wait_for_spans(spans, "a.greet")
    inside, outside = (json.loads(line) for line in handler.lines)
    assert inside["message"] == "greeting fay"
    assert inside["trace_id"] == format(found["a.greet"].context.trace_id, "032x")
    assert inside["span_id"] == format(found["a.greet"].context.span_id, "016x")
    assert inside["call_id"] == found["a.greet"].attributes["nameko.call_id"]
    assert inside["level"] == "INFO" and inside["logger"] == "tests.traced"
    assert "thread" in inside and inside["time"].endswith("Z")
    assert outside["message"] == "outside"
    assert "trace_id" not in outside and "call_id" not in outside
    assert handler.records[1].trace_id == ""  # the filter still sets the fields


def test_json_formatter_alone_and_with_an_exception():
    formatter = JsonFormatter()
    try:
        raise KeyError("k")
    except KeyError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad %s", ("thing",), None)
        record.exc_info = sys.exc_info()
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "bad thing" and entry["level"] == "ERROR"
    assert "KeyError" in entry["exception"]


class Later:
    name = "later"
    a = RpcProxy("a")

    @rpc
    async def call(self, name):
        return await self.a.greet(name)


def test_async_workers_are_traced_too(memory_config, container_factory, spans):
    config = {**memory_config, "TRACING": True}
    for cls in (Later, A, B):
        container_factory(cls, config).start()
    with ClusterRpcProxy(config) as cluster:
        assert cluster.later.call("gus") == "hello GUS"
    found = wait_for_spans(spans, "later.call", "send a.greet", "a.greet")
    assert parent_of(found["send a.greet"]) == found["later.call"].context.span_id
    assert parent_of(found["a.greet"]) == found["send a.greet"].context.span_id


def test_tracing_without_opentelemetry_is_a_configuration_error(
    memory_config, container_factory, monkeypatch
):
    monkeypatch.setitem(sys.modules, "nameko._tracing.otel", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'shimeji\[tracing\]'"):
        container_factory(A, {**memory_config, "TRACING": True})
    container_factory(A, {**memory_config, "TRACING": "false"})  # off: never imported


def test_tracing_off_imports_no_opentelemetry():
    """A service with tracing off never loads OpenTelemetry (fresh interpreter)."""
    script = textwrap.dedent(
        """
        import sys
        from nameko.containers import ServiceContainer
        from nameko.events import EventDispatcher, event_handler
        from nameko.rpc import rpc
        from nameko.standalone.rpc import ClusterRpcProxy

        class S:
            name = "s"
            dispatch = EventDispatcher()

            @rpc
            def go(self):
                self.dispatch("went", 1)
                return 1

        config = {"AMQP_URI": "memory://off", "TRACING": False}
        container = ServiceContainer(S, config)
        container.start()
        with ClusterRpcProxy(config) as cluster:
            assert cluster.s.go() == 1
        container.stop()
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_one_tracing_per_process():
    assert shared_tracing() is shared_tracing()


def test_a_worker_without_trace_context_starts_a_trace(memory_config, container_factory, spans):
    container_factory(B, {**memory_config, "TRACING": True}).start()
    with ClusterRpcProxy(memory_config) as cluster:  # an untraced caller
        assert cluster.b.shout("hal") == "HAL"
    found = wait_for_spans(spans, "b.shout", "send b.events shouted")
    assert found["b.shout"].parent is None
    assert parent_of(found["send b.events shouted"]) == found["b.shout"].context.span_id


def test_the_nameko_run_feature_says_where_spans_go(spans, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "nameko.tracing")
    assert tracing_feature(None, {"TRACING": False}) is None
    flush = tracing_feature(None, {"TRACING": True})
    assert "tracing on: spans go to TracerProvider" in caplog.text
    flush()  # at exit: the provider exports what it holds
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    tracing_feature(None, {"TRACING": "yes"})
    assert "no OpenTelemetry TracerProvider is set: spans are dropped" in caplog.text


class Producer:
    name = "producer"
    publish = Publisher()

    @rpc
    def put(self, value):
        self.publish(value, routing_key="jobs")


class Worker:
    name = "worker"
    done: list = []

    @consume(Queue("jobs"))
    def take(self, value):
        Worker.done.append(value)


def test_publisher_and_consume_are_traced(memory_config, container_factory, spans):
    config = {**memory_config, "TRACING": True}
    for cls in (Producer, Worker):
        container_factory(cls, config).start()
    with ClusterRpcProxy(config) as cluster:
        cluster.producer.put(7)
    found = wait_for_spans(spans, "producer.put", "send (default) jobs", "worker.take")
    assert parent_of(found["send (default) jobs"]) == found["producer.put"].context.span_id
    assert parent_of(found["worker.take"]) == found["send (default) jobs"].context.span_id
    assert found["worker.take"].kind is SpanKind.CONSUMER
    assert Worker.done == [7]
