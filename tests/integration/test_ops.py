"""The operations endpoint of real `nameko run` processes on RabbitMQ:
/metrics after known traffic, /readyz through a lost connection and a
graceful stop, one endpoint per process under --processes, probes under hostile clients."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing._vhosts import rabbitmqctl
from tests.integration.conftest import wait_until_serving
from tests.ops.test_ops_load import PROBE_WITHIN, probe, silent_connections, trickling
from tests.rabbit_admin import close_connection
from tests.waiting import wait_until

TIMEOUT = 30
pytestmark = pytest.mark.rabbit


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:  # not listening (yet, or any more)
        return 0, str(error)


def ops_ports(proc, count: int = 1) -> list[int]:
    """The ports the process printed (``operations endpoint on http://host:port``)."""
    found: list[int] = []

    def printed() -> bool:
        found[:] = [int(p) for p in re.findall(r"operations endpoint on http://[^ ]+:(\d+)", proc.output())]  # fmt: skip
        return len(found) >= count

    wait_until(printed, timeout=TIMEOUT, what="the ops endpoint line")
    return found


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"no {name}{labels}")


@pytest.fixture
def service(nameko_run, rabbit_config_uri):
    proc = nameko_run(
        ["ops_service", "--ops-address", "127.0.0.1:0"],
        files=["ops_service.py"],
        config={"SHUTDOWN_TIMEOUT": 20},
    )
    (port,) = ops_ports(proc)
    wait_until_serving(rabbit_config_uri, "ops_service")
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=TIMEOUT, what="ready")
    return proc, port


def test_metrics_after_known_traffic(service, rabbit_config_uri):
    proc, port = service
    before = metric(get(port, "/metrics")[1], "nameko_entrypoint_calls_total", service="ops_service", entrypoint="ping", type="rpc")  # fmt: skip
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        for _ in range(20):
            assert rpc.ops_service.ping() == "pong"
        for kind in ["value"] * 4 + ["key"]:
            with pytest.raises(Exception):  # noqa: B017 (a RemoteError)
                rpc.ops_service.fail(kind)
    with event_dispatcher(rabbit_config_uri) as dispatch:
        dispatch("ops_source", "poke", 1)
    labels = {"service": "ops_service", "type": "rpc"}
    poke = {"service": "ops_service", "entrypoint": "on_poke", "type": "event"}
    wait_until(
        lambda: "on_poke" in get(port, "/metrics")[1], timeout=TIMEOUT, what="the event handled"
    )
    text = get(port, "/metrics")[1]
    assert metric(text, "nameko_entrypoint_calls_total", **labels, entrypoint="ping") == before + 20
    assert metric(text, "nameko_entrypoint_calls_total", **labels, entrypoint="fail") == 5
    errors = {e: metric(text, "nameko_entrypoint_errors_total", **labels, entrypoint="fail", error=e) for e in ("ValueError", "KeyError")}  # fmt: skip
    assert errors == {"ValueError": 4, "KeyError": 1}
    assert metric(text, "nameko_entrypoint_latency_seconds_count", **labels, entrypoint="fail") == 5
    assert metric(text, "nameko_entrypoint_queue_wait_seconds_count", **poke) == 1
    published = metric(text, "nameko_broker_messages_published_total", service="ops_service")
    assert published >= 25  # a reply per call
    assert metric(text, "nameko_broker_messages_confirmed_total", service="ops_service") == published  # fmt: skip
    consumers = metric(text, "nameko_broker_consumers", service="ops_service")
    assert consumers == 2  # rpc-ops_service and the event handler's queue
    assert metric(text, "nameko_broker_consumers_attached", service="ops_service") == consumers
    assert metric(text, "nameko_process_resident_memory_bytes") > 10_000_000


def test_readyz_flips_while_the_connection_is_lost_and_back(service, rabbit_vhost):
    proc, port = service
    # Without permissions on its vhost the service cannot get its connection
    # back: it stays reconnecting (healthy: restarting would not help) and unready.
    rabbitmqctl("clear_permissions", "-p", rabbit_vhost, "guest")
    try:
        close_connection("nameko:ops_service", rabbit_vhost)
        wait_until(lambda: get(port, "/readyz")[0] == 503, timeout=TIMEOUT, what="unready")
        body = json.loads(get(port, "/readyz")[1])["services"]["ops_service"]
        assert body["broker"] == "reconnecting"
        status, health = get(port, "/healthz")
        assert status == 200 and json.loads(health)["services"]["ops_service"]["broker"] == "reconnecting"  # fmt: skip
    finally:
        rabbitmqctl("set_permissions", "-p", rabbit_vhost, "guest", ".*", ".*", ".*")
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=TIMEOUT, what="ready again")
    text = get(port, "/metrics")[1]
    assert metric(text, "nameko_broker_reconnects_total", service="ops_service") >= 1
    assert metric(text, "nameko_broker_consumers_attached", service="ops_service") == 2


def test_readyz_is_503_during_a_graceful_stop(service, rabbit_config_uri):
    proc, port = service
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        reply = rpc.ops_service.slow.call_async(3)
        in_flight = lambda: metric(get(port, "/metrics")[1], "nameko_workers_in_flight", service="ops_service")  # noqa: E731  # fmt: skip
        wait_until(lambda: in_flight() == 1, timeout=TIMEOUT, what="the slow call running")
        proc.signal(signal.SIGTERM)
        wait_until(lambda: get(port, "/readyz")[0] == 503, timeout=TIMEOUT, what="unready")
        assert json.loads(get(port, "/readyz")[1])["services"]["ops_service"]["state"] == "stopping"  # fmt: skip
        assert get(port, "/healthz")[0] == 200  # draining, alive
        assert reply.result() == 3
    assert proc.wait(TIMEOUT) == 0, proc.output()
    assert get(port, "/healthz")[0] == 0  # the endpoint closed with the process


def test_probes_answer_while_clients_trickle_stall_and_crowd(service):
    """`nameko run --ops-address`: /healthz and /readyz answer within a second
    each while one client trickles a byte at a time, six connect and say
    nothing, and fifty more connect at once."""
    proc, port = service
    address = ("127.0.0.1", port)
    with trickling(address), silent_connections(address, 6), silent_connections(address, 50):
        for path in ("/healthz", "/readyz", "/healthz"):
            status, took = probe(address, path)
            assert status == 200 and took < PROBE_WITHIN, (path, status, took)


def _free_ports(count: int) -> int:
    """A first port P such that P..P+count-1 are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            held = [socket.create_server(("127.0.0.1", first + i)) for i in range(count)]
        except OSError:
            continue
        for sock in held:
            sock.close()
        return first
    raise AssertionError("no free ports")


def test_each_process_has_its_own_endpoint(nameko_run, rabbit_config_uri):
    first = _free_ports(2)
    proc = nameko_run(
        ["ops_service", "--processes", "2", "--ops-address", str(first)], files=["ops_service.py"]
    )
    assert sorted(ops_ports(proc, 2)) == [first, first + 1]
    for port in (first, first + 1):
        wait_until(lambda p=port: get(p, "/readyz")[0] == 200, timeout=TIMEOUT, what="ready")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        for _ in range(10):
            rpc.ops_service.ping()
    calls = [
        metric(
            get(p, "/metrics")[1],
            "nameko_entrypoint_calls_total",
            service="ops_service",
            entrypoint="ping",
            type="rpc",
        )  # fmt: skip
        for p in (first, first + 1)
    ]
    assert sum(calls) == 10  # each process counts its own workers
    proc.signal(signal.SIGTERM)
    assert proc.wait(TIMEOUT) == 0, proc.output()
