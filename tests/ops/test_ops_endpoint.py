"""The operations endpoint in-process, on the memory broker: /metrics after
known traffic, /healthz and /readyz through a lost consumer and a graceful
stop (RabbitMQ and real processes: tests/integration/test_ops.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nameko._broker.base import Delivery
from nameko._concurrency import Event, start_thread
from nameko._messaging.connection import BrokerConnection
from nameko.events import event_handler
from nameko.extensions import Entrypoint
from nameko.ops import serve_ops
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.waiting import wait_until

RELEASE = Event()  # lets `Service.hold` return


class Service:
    name = "opsvc"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def fail(self, kind):
        raise {"value": ValueError, "key": KeyError}[kind](kind)

    @rpc
    def hold(self):
        RELEASE.wait(10)
        return "held"

    @event_handler("src", "thing")
    def on_thing(self, payload):
        return payload


def get(address: tuple[str, int], path: str) -> tuple[int, str]:
    url = f"http://{address[0]}:{address[1]}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed: dict[Any, float], name: str, **labels: str) -> float:
    return parsed[(name, frozenset(labels.items()))]


@pytest.fixture
def endpoint(memory_config, runner_factory):
    RELEASE.clear()
    runner = runner_factory(memory_config, Service)
    ops = serve_ops(runner, "127.0.0.1:0")
    runner.start()
    yield runner, ops
    RELEASE.set()
    ops.close()


def test_metrics_count_calls_errors_and_latency(endpoint, memory_config):
    runner, ops = endpoint
    with ClusterRpcProxy(memory_config) as proxy:
        for i in range(7):
            assert proxy.opsvc.echo(i) == i
        for kind in ("value", "value", "key"):
            with pytest.raises(Exception):  # noqa: B017 (a RemoteError of either kind)
                proxy.opsvc.fail(kind)
    with event_dispatcher(memory_config) as dispatch:
        dispatch("src", "thing", {"n": 1})
    status, text = get(ops.address, "/metrics")
    assert status == 200
    wait_until(lambda: "on_thing" in get(ops.address, "/metrics")[1], timeout=5)
    parsed = samples(get(ops.address, "/metrics")[1])
    echo = {"service": "opsvc", "entrypoint": "echo", "type": "rpc"}
    fail = {"service": "opsvc", "entrypoint": "fail", "type": "rpc"}
    event = {"service": "opsvc", "entrypoint": "on_thing", "type": "event"}
    assert value(parsed, "nameko_entrypoint_calls_total", **echo) == 7
    assert value(parsed, "nameko_entrypoint_calls_total", **fail) == 3
    assert value(parsed, "nameko_entrypoint_calls_total", **event) == 1
    assert value(parsed, "nameko_entrypoint_errors_total", **fail, error="ValueError") == 2
    assert value(parsed, "nameko_entrypoint_errors_total", **fail, error="KeyError") == 1
    assert ("nameko_entrypoint_errors_total", frozenset({**echo, "error": "ValueError"}.items())) not in parsed  # fmt: skip
    assert value(parsed, "nameko_entrypoint_latency_seconds_count", **echo) == 7
    assert value(parsed, "nameko_entrypoint_latency_seconds_bucket", **echo, le="+Inf") == 7
    assert value(parsed, "nameko_entrypoint_latency_seconds_sum", **echo) > 0
    # requests and events now carry their AMQP timestamp: each worker's wait is seen
    assert value(parsed, "nameko_entrypoint_queue_wait_seconds_count", **echo) == 7
    assert value(parsed, "nameko_entrypoint_queue_wait_seconds_count", **event) == 1
    assert value(parsed, "nameko_workers_in_flight", service="opsvc") == 0
    assert value(parsed, "nameko_max_workers", service="opsvc") == 10
    # 10 replies, and nothing unroutable or refused
    assert value(parsed, "nameko_broker_messages_published_total", service="opsvc") == 10
    assert value(parsed, "nameko_broker_messages_confirmed_total", service="opsvc") == 10
    assert value(parsed, "nameko_broker_messages_returned_total", service="opsvc") == 0
    assert value(parsed, "nameko_broker_messages_nacked_total", service="opsvc") == 0
    assert value(parsed, "nameko_broker_reconnects_total", service="opsvc") == 0
    wanted = value(parsed, "nameko_broker_consumers", service="opsvc")
    assert wanted == 2  # the RPC queue and the event handler's
    assert value(parsed, "nameko_broker_consumers_attached", service="opsvc") == wanted
    assert value(parsed, "nameko_process_resident_memory_bytes") > 10_000_000
    assert value(parsed, "nameko_process_threads") >= 3


def test_workers_in_flight_while_they_run(endpoint, memory_config):
    runner, ops = endpoint
    with ClusterRpcProxy(memory_config) as proxy:
        reply = proxy.opsvc.hold.call_async()
        in_flight = ("nameko_workers_in_flight", frozenset({"service": "opsvc"}.items()))
        wait_until(lambda: samples(get(ops.address, "/metrics")[1])[in_flight] == 1, timeout=5)
        RELEASE.set()
        assert reply.result() == "held"


def test_healthy_and_ready_once_started(endpoint):
    runner, ops = endpoint
    status, body = get(ops.address, "/healthz")
    assert status == 200 and json.loads(body)["services"]["opsvc"]["broker"] == "connected"
    status, body = get(ops.address, "/readyz")
    assert status == 200
    assert json.loads(body)["services"]["opsvc"] == {
        "state": "running",
        "broker": "connected",
        "consumers": 2,
        "attached": 2,
    }
    assert get(ops.address, "/nothing")[0] == 404


def test_unready_from_the_start_of_a_graceful_stop(endpoint, memory_config):
    runner, ops = endpoint
    with ClusterRpcProxy(memory_config) as proxy:
        reply = proxy.opsvc.hold.call_async()
        wait_until(lambda: runner.containers and _in_flight(ops) == 1, timeout=5)
        stopper = start_thread(runner.stop, "test-stop")
        # the worker holds the stop: unready (503) while the process stays healthy
        wait_until(lambda: get(ops.address, "/readyz")[0] == 503, timeout=5)
        body = json.loads(get(ops.address, "/readyz")[1])
        assert body["services"]["opsvc"]["state"] == "stopping"
        assert get(ops.address, "/healthz")[0] == 200
        RELEASE.set()
        assert reply.result() == "held"
        stopper.join(10)
    assert get(ops.address, "/readyz")[0] == 503


def _in_flight(ops) -> float:
    parsed = samples(get(ops.address, "/metrics")[1])
    return parsed[("nameko_workers_in_flight", frozenset({"service": "opsvc"}.items()))]


class ForeignQueueConsumer(Entrypoint):
    """Consumes a queue somebody else declares (as some 2.x extensions do):
    when that queue is deleted, the broker ends the consumer for good."""

    connection = BrokerConnection()

    def setup(self) -> None:
        self.connection.register_provider(self)

    def start(self) -> None:
        broker = self.connection.broker
        broker.declare([_foreign_queue()])
        self.consumer = broker.consume("foreign-jobs", self.on_delivery)

    def on_delivery(self, delivery: Delivery) -> None:
        delivery.ack()

    def stop(self) -> None:
        self.consumer.cancel()
        self.connection.unregister_provider(self)


def _foreign_queue():
    from nameko._broker.base import Queue

    return Queue("foreign-jobs", durable=False)


class ForeignService:
    name = "foreign"

    @ForeignQueueConsumer.decorator
    def job(self, payload):
        pass


def test_unready_while_a_consumer_is_lost(memory_config, runner_factory):
    runner = runner_factory(memory_config, ForeignService)
    ops = serve_ops(runner, "127.0.0.1:0")
    try:
        runner.start()
        assert get(ops.address, "/readyz")[0] == 200
        (container,) = runner.containers
        container.shared_extensions[BrokerConnection].broker.delete_queue("foreign-jobs")
        wait_until(lambda: get(ops.address, "/readyz")[0] == 503, timeout=5)
        body = json.loads(get(ops.address, "/readyz")[1])["services"]["foreign"]
        assert body["detached"] == ["foreign-jobs"] and body["broker"] == "connected"
        assert get(ops.address, "/healthz")[0] == 200  # the process itself is fine
    finally:
        ops.close()


GATE = Event()


class SlowStart(Entrypoint):
    """An entrypoint whose start waits for the test (a consumer being set up)."""

    def start(self) -> None:
        GATE.wait(10)


class SlowService:
    name = "slow_start"

    @SlowStart.decorator
    def job(self):
        pass


def test_unready_until_every_extension_has_started(memory_config, runner_factory):
    GATE.clear()
    runner = runner_factory(memory_config, SlowService)
    ops = serve_ops(runner, "127.0.0.1:0")
    try:
        assert get(ops.address, "/readyz")[0] == 503
        starter = start_thread(runner.start, "test-start")
        wait_until(lambda: all(c.started for c in runner.containers), timeout=5)
        status, body = get(ops.address, "/readyz")  # started, but not all of it yet
        assert status == 503 and json.loads(body)["services"]["slow_start"]["state"] == "starting"
        GATE.set()
        starter.join(10)
        assert get(ops.address, "/readyz")[0] == 200
    finally:
        GATE.set()
        ops.close()


def test_a_taken_address_is_a_configuration_error(endpoint, memory_config, runner_factory):
    from nameko.exceptions import ConfigurationError

    runner, ops = endpoint
    other = runner_factory(memory_config, ForeignService)
    taken = f"127.0.0.1:{ops.address[1]}"
    with pytest.raises(ConfigurationError) as raised:
        serve_ops(other, taken)
    assert str(raised.value) == (
        f"cannot listen on {taken} (address already in use); "
        "set OPS_ADDRESS (or --ops-address) to a free [host:]port"
    )
    assert not any(c.worker_observers for c in other.containers)  # nothing left behind


def test_a_service_without_the_endpoint_has_no_observer(memory_config, runner_factory):
    runner = runner_factory(memory_config, Service)
    assert all(c.worker_observers == [] for c in runner.containers)


def test_unhealthy_once_a_running_service_lost_its_connection_for_good(endpoint):
    runner, ops = endpoint
    (container,) = runner.containers
    container.shared_extensions[BrokerConnection].current.close()  # as if it gave up
    status, body = get(ops.address, "/healthz")
    assert status == 503
    assert json.loads(body)["services"]["opsvc"] == {
        "state": "running",
        "broker": "closed",
        "problem": "its broker connection is closed and will not come back",
    }
    assert get(ops.address, "/readyz")[0] == 503


def test_the_run_feature_is_off_unless_configured(memory_config, runner_factory):
    from nameko._ops.feature import ops_feature

    runner = runner_factory(memory_config, Service)
    assert ops_feature(runner, {}) is None
    assert all(c.worker_observers == [] for c in runner.containers)
    close = ops_feature(runner, {"OPS_ADDRESS": "127.0.0.1:0"})
    assert close is not None
    assert all(len(c.worker_observers) == 1 for c in runner.containers)
    close()
    assert all(c.worker_observers == [] for c in runner.containers)


def test_nameko_run_refuses_a_bad_ops_address(tmp_path, monkeypatch, capsys):
    from nameko.cli.main import main

    (tmp_path / "ops_cli_service.py").write_text(
        "from nameko.rpc import rpc\n\nclass S:\n    name = 's'\n\n    @rpc\n    def m(self):\n        pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        main(["run", "--broker", "memory://", "--ops-address", "nowhere", "ops_cli_service"])
    assert exited.value.code == 1
    assert "OPS_ADDRESS must be [host:]port" in capsys.readouterr().err
