"""The plugin's fixtures that need no RabbitMQ (the in-memory broker stands
in), each exercised by an inner pytest session in both nameko styles."""

from __future__ import annotations

INNER = """
import queue

import pytest

from nameko import config
from nameko.containers import ServiceContainer
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcClient, ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from nameko.web.handlers import http

KILLED = []


class WorkerCtx(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


class Service:
    name = "service"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def setting(self, key):
        return config.get(key)  # nameko 3 style: the global config

    context = WorkerCtx()

    @rpc
    def stack(self):
        return self.context.call_id_stack

    @http("GET", "/hello")
    def hello(self, request):
        return "hi"


class Other:
    name = "other"

    @rpc
    def ping(self):
        return "pong"


def test_empty_config_is_empty_in_both_styles(empty_config):
    assert empty_config == {}
    assert dict(config) == {}


@pytest.mark.usefixtures("memory_config")
def test_memory_config_3x_style():
    assert config["AMQP_URI"].startswith("memory://")


def test_memory_config_2x_style(memory_config):
    assert memory_config == dict(config)


def test_web_config(web_config, web_config_port):
    address = f"127.0.0.1:{web_config_port}"
    assert web_config == {"WEB_SERVER_ADDRESS": address}
    assert config["WEB_SERVER_ADDRESS"] == address


def test_mock_container(mock_container):
    assert mock_container.config == {"serializer": "json"}
    assert (mock_container.serializer, mock_container.accept) == ("json", ["json"])


def test_container_factory_2x_style(container_factory, memory_config):
    container = container_factory(Service, dict(memory_config, MARK="2x"))
    assert isinstance(container, ServiceContainer)
    assert container.config["MARK"] == "2x"
    container.start()
    with entrypoint_hook(container, "setting") as setting:
        assert setting("MARK") == "2x"  # in the global config too, while it lives


@pytest.mark.usefixtures("memory_config")
def test_container_factory_3x_style(container_factory):
    container = container_factory(Service)
    container.start()
    with ClusterRpcClient() as client:
        assert client.service.echo(3) == 3


@pytest.mark.usefixtures("memory_config")
def test_container_factory_3x_config_argument_is_a_patch(container_factory):
    container = container_factory(Service, {"MARK": "patched"})
    container.start()
    with entrypoint_hook(container, "setting") as setting:
        assert setting("MARK") == "patched"


def test_runner_factory_2x_style(runner_factory, memory_config):
    runner = runner_factory(memory_config, Service, Other)
    assert isinstance(runner, ServiceRunner)
    runner.start()
    with ClusterRpcProxy(memory_config) as proxy:
        assert proxy.other.ping() == "pong"


@pytest.mark.usefixtures("memory_config")
def test_runner_factory_3x_style(runner_factory):
    runner = runner_factory(Service, Other)
    runner.start()
    with ClusterRpcClient() as client:
        assert client.service.echo("x") == "x"


def test_the_factories_patches_are_gone_after_the_test():
    assert "MARK" not in config and "AMQP_URI" not in config


def test_predictable_call_ids(predictable_call_ids, container_factory, memory_config):
    container = container_factory(Service, memory_config)
    container.start()
    with ClusterRpcProxy(memory_config) as proxy:
        first = proxy.service.stack()
        second = proxy.service.stack()
    # the standalone client's call, then the worker's own id, from one counter
    assert first == ["standalone_rpc_proxy.call.0", "service.stack.1"]
    assert second == ["standalone_rpc_proxy.call.2", "service.stack.3"]
    assert predictable_call_ids.call_count == 2  # the mock of the workers' ids


def test_web_session(container_factory, web_config, web_session):
    container = container_factory(Service, dict(web_config, AMQP_URI="memory://web"))
    container.start()
    assert web_session.get("/hello").text == "hi"


def test_memory_config_serves_http_where_web_session_goes(
    container_factory, memory_config, web_config_port, web_session
):
    assert memory_config["WEB_SERVER_ADDRESS"] == f"127.0.0.1:{web_config_port}"
    container = container_factory(Service, memory_config)
    container.start()
    assert web_session.get("/hello").text == "hi"  # not on the default 0.0.0.0:8000


def test_get_message_from_queue_on_memory(memory_config, get_message_from_queue):
    from nameko._broker import connect
    from nameko._broker.base import Properties, Queue

    with connect(memory_config["AMQP_URI"]) as broker:
        broker.declare([Queue("q")])
        for n in (1, 2):
            body = f'{{"n": {n}}}'.encode()
            props = Properties(content_type="application/json", headers={"h": n})
            broker.publish("", "q", body, props)
        first = get_message_from_queue("q", ack=False)
        assert (first.payload, first.headers) == ({"n": 1}, {"h": 1})
        again = get_message_from_queue("q")
        assert again.payload == {"n": 1} and again.delivery_info["redelivered"]
        second = get_message_from_queue("q", accept=["json"])
        assert second.payload == {"n": 2}
        assert second.delivery_info["routing_key"] == "q"
        assert second.properties["content_type"] == "application/json"
        with pytest.raises(queue.Empty):
            get_message_from_queue("q", block=False)
        with pytest.raises(queue.Empty):
            get_message_from_queue("q", timeout=0.1)


def test_a_failing_test_still_tears_down(container_factory, runner_factory, memory_config):
    container = container_factory(Service, memory_config)
    runner = runner_factory(memory_config, Other)
    container.start()
    runner.start()
    KILLED.extend([container, *runner.containers])
    raise AssertionError("this test fails on purpose")


def test_after_the_failure_everything_was_killed():
    assert KILLED and all(c._died.ready() for c in KILLED)
    assert dict(config) == {}
"""


def test_fixtures_without_rabbitmq(pytester, run_inner):
    pytester.makepyfile(test_inner=INNER)
    result = run_inner("-p", "no:randomly")
    result.assert_outcomes(passed=16, failed=1)
    result.stdout.fnmatch_lines(["E * this test fails on purpose"])
