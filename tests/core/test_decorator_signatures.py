"""The public entrypoint decorators show their real parameters (to editors,
`help()` and the API reference) and declare the same entrypoints as the
classes' own ``decorator``."""

import inspect

import pytest

from nameko._runtime.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.events import BROADCAST, EventHandler, event_handler
from nameko.messaging import Consumer, consume
from nameko.reliability import RetryPolicy
from nameko.rpc import Rpc, rpc
from nameko.timer import Cron, Timer, cron, timer
from nameko.web.handlers import HttpRequestHandler, http
from nameko.web.websocket import WebSocketRpc
from nameko.web.websocket import rpc as ws_rpc

EXPECTED = {
    rpc: ["expected_exceptions", "sensitive_arguments", "retry"],
    ws_rpc: ["expected_exceptions", "sensitive_arguments"],
    http: ["method", "url", "expected_exceptions", "sensitive_arguments"],
    timer: ["interval", "eager", "singleton", "key", "expected_exceptions"],
    cron: ["expression", "tz", "singleton", "key", "expected_exceptions"],
    event_handler: [
        "source_service",
        "event_type",
        "handler_type",
        "reliable_delivery",
        "requeue_on_error",
        "retry",
    ],
    consume: ["queue", "requeue_on_error", "retry", "exchange", "routing_key", "prefetch_count"],
}


@pytest.mark.parametrize("decorator", list(EXPECTED), ids=lambda d: d.__module__ + "." + d.__name__)
def test_signature_names_the_real_parameters(decorator):
    parameters = inspect.signature(decorator).parameters
    named = [p.name for p in parameters.values() if p.kind is not p.VAR_KEYWORD]
    assert set(EXPECTED[decorator]) <= set(named)
    assert not any(p.kind is p.VAR_POSITIONAL for p in parameters.values())
    doc = inspect.getdoc(decorator)
    assert doc and "*args" not in doc and "Args:" in doc


def declared(method):
    (entrypoint,) = getattr(method, ENTRYPOINT_EXTENSIONS_ATTR)
    return entrypoint


def test_bare_and_called_forms_declare_the_same_entrypoints():
    def bare(self):
        pass

    assert rpc(bare) is bare
    assert type(declared(bare)) is Rpc
    assert declared(bare).retry is None

    def with_options(self, password):
        pass

    rpc(ValueError, "password", retry=3)(with_options)
    entrypoint = declared(with_options)
    assert entrypoint.expected_exceptions is ValueError
    assert entrypoint.sensitive_arguments == "password"
    assert entrypoint.retry == RetryPolicy(attempts=3)

    def socket_method(self, socket_id):
        pass

    ws_rpc(socket_method)
    assert type(declared(socket_method)) is WebSocketRpc


def test_options_reach_the_entrypoint():
    def handler(self, payload):
        pass

    event_handler("src", "happened", BROADCAST, False, prefetch_count=3)(handler)
    entrypoint = declared(handler)
    assert type(entrypoint) is EventHandler
    assert (entrypoint.source_service, entrypoint.event_type) == ("src", "happened")
    assert (entrypoint.handler_type, entrypoint.reliable_delivery) == (BROADCAST, False)
    assert entrypoint.consumer_options == {"prefetch_count": 3}

    def job(self, body):
        pass

    consume("jobs", True, routing_key="jobs")(job)
    entrypoint = declared(job)
    assert type(entrypoint) is Consumer
    assert (entrypoint.queue, entrypoint.requeue_on_error) == ("jobs", True)
    assert entrypoint.consumer_options == {"routing_key": "jobs"}

    def tick(self):
        pass

    timer(5, singleton=True, key="beat")(tick)
    entrypoint = declared(tick)
    assert type(entrypoint) is Timer
    assert (entrypoint.interval, entrypoint.singleton, entrypoint.key) == (5, True, "beat")

    def nightly(self):
        pass

    cron("0 3 * * *", tz="Europe/London", singleton=False)(nightly)
    entrypoint = declared(nightly)
    assert type(entrypoint) is Cron
    assert (entrypoint.expression, str(entrypoint.tz), entrypoint.singleton) == (
        "0 3 * * *",
        "Europe/London",
        False,
    )

    def page(self, request, order_id):
        pass

    http("GET,POST", "/orders/<int:order_id>", expected_exceptions=KeyError)(page)
    entrypoint = declared(page)
    assert type(entrypoint) is HttpRequestHandler
    assert (entrypoint.method, entrypoint.url) == ("GET,POST", "/orders/<int:order_id>")
    assert entrypoint.expected_exceptions is KeyError


def test_a_bad_cron_expression_fails_where_it_is_written():
    with pytest.raises(ValueError):

        @cron("not a schedule")
        def tick(self):
            pass
