"""Tracing beside a real nameko 2.14.1 (docs D27): its services answer
requests that carry ``traceparent`` as before, and a trace goes on through
a 2.14 hop (2.14 forwards the header as ``nameko.traceparent``, which
shimeji reads as a parent and never sends on)."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from nameko.standalone.rpc import ClusterRpcProxy
from tests.compat.test_wire_nameko214 import NAMEKO_PYTHON, TIMEOUT, running_both_sides
from tests.tracing_support import collected_spans, parent_of, wait_for_spans

pytestmark = [pytest.mark.rabbit, pytest.mark.compat]


@pytest.fixture
def spans():
    yield from collected_spans()


@pytest.fixture
def traced_beside_nameko(rabbit_uri, tmp_path):
    """nameko_side under nameko 2.14.1; shimeji_side under shimeji with TRACING on."""
    assert NAMEKO_PYTHON.exists(), "nameko 2.14.1 peer missing: run scripts/bootstrap"
    config = {"AMQP_URI": rabbit_uri, "TRACING": True}
    with running_both_sides(config, NAMEKO_PYTHON, tmp_path / "nameko-side.log"):
        yield config


def test_a_trace_goes_through_a_nameko_214_hop(traced_beside_nameko, spans):
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("caller") as caller:
        with ClusterRpcProxy(traced_beside_nameko, timeout=TIMEOUT) as cluster:
            # shimeji -> 2.14 (a request with traceparent) -> shimeji (nameko.traceparent)
            assert cluster.nameko_side.relay_hello("ann") == "shimeji_side says hello to ann"
            # shimeji -> shimeji -> 2.14: answered as without tracing
            assert cluster.shimeji_side.relay_hello("bo") == "nameko_side says hello to bo"
    found = wait_for_spans(spans, "send nameko_side.relay_hello", "shimeji_side.hello")
    trace_id = caller.get_span_context().trace_id
    assert found["shimeji_side.hello"].context.trace_id == trace_id
    # 2.14 made no span: the parent is the last span before its hop
    assert parent_of(found["shimeji_side.hello"]) == (
        found["send nameko_side.relay_hello"].context.span_id
    )
