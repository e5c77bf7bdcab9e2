"""Traces on RabbitMQ (docs D27): one trace across an HTTP
gateway, two RPC hops and an event, the W3C headers as RabbitMQ delivers
them, and `nameko run` with ``TRACING: true`` joining a caller's trace."""

from __future__ import annotations

import json
import signal

import pytest
import requests
from opentelemetry import trace

from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port
from tests.integration.conftest import wait_until_serving
from tests.tracing_support import (
    HOPS,
    A,
    B,
    C,
    Gateway,
    assert_three_hops,
    collected_spans,
    spying,
    wait_for_spans,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit


@pytest.fixture
def spans():
    yield from collected_spans()


def test_http_and_two_rpc_hops_are_one_trace_on_rabbitmq(rabbit_config, runner_factory, spans):
    address = f"127.0.0.1:{find_free_port()}"
    config = {**rabbit_config, "WEB_SERVER_ADDRESS": address, "TRACING": True}
    C.seen = []
    runner_factory(config, Gateway, A, B, C).start()
    with spying(config["AMQP_URI"], "nameko-rpc", "b.events") as spy:
        assert requests.get(f"http://{address}/hello/ann", timeout=10).text == "hello ANN"
        found = wait_for_spans(spans, *HOPS)
        wait_until(lambda: len(spy.reply_headers()) == 2, timeout=10)
        on_the_wire = {key: spy.headers(key) for key in ("a.greet", "b.shout", "shouted")}
    assert_three_hops(found)
    for routing_key, producer in (
        ("a.greet", "send a.greet"),
        ("b.shout", "send b.shout"),
        ("shouted", "send b.events shouted"),
    ):
        version, trace_id, span_id, flags = on_the_wire[routing_key]["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1  # sampled
        assert trace_id == format(found[producer].context.trace_id, "032x")
        assert span_id == format(found[producer].context.span_id, "016x")
        assert not [k for k in on_the_wire[routing_key] if k.startswith("nameko.trace")]


LOGGING = {
    "version": 1,
    "filters": {"trace": {"()": "nameko.tracing.TraceContextFilter"}},
    "formatters": {"json": {"()": "nameko.tracing.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["trace"], "formatter": "json"}
    },
    "loggers": {"traced": {"level": "INFO", "handlers": ["console"]}},
}


def test_nameko_run_with_tracing_joins_the_callers_trace(
    nameko_run, rabbit_config_uri, spans, tmp_path
):
    proc = nameko_run(
        ["traced_service"],
        files=["traced_service.py"],
        config={"TRACING": True, "LOGGING": LOGGING},
        folder=tmp_path / "run",
    )
    wait_until_serving(rabbit_config_uri, "traced")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller") as caller:
        with ClusterRpcProxy({**rabbit_config_uri, "TRACING": True}, timeout=10) as cluster:
            assert cluster.traced.echo("x") == "x"
    ours = wait_for_spans(spans, "send traced.echo")["send traced.echo"]
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.output()
    lines = (tmp_path / "run" / "spans.jsonl").read_text().splitlines()
    theirs = {span["name"]: span for span in map(json.loads, lines)}
    trace_id = format(caller.get_span_context().trace_id, "032x")
    assert theirs["traced.echo"]["trace_id"] == trace_id
    assert theirs["traced.echo"]["parent_id"] == format(ours.context.span_id, "016x")
    assert theirs["reply traced.echo"]["parent_id"] == theirs["traced.echo"]["span_id"]
    (logged,) = [json.loads(line) for line in proc.output().splitlines() if "echoing x" in line]
    assert logged["trace_id"] == trace_id
    assert logged["span_id"] == theirs["traced.echo"]["span_id"]
    assert logged["call_id"].startswith("traced.echo.")
