"""RPC end to end on the in-memory broker: services, RpcProxy, standalone clients."""

from __future__ import annotations

import threading

import pytest

from nameko._broker import connect
from nameko.containers import ServiceContainer
from nameko.exceptions import (
    IncorrectSignature,
    MethodNotFound,
    RemoteError,
    RpcTimeout,
    UnknownService,
    deserialize_to_instance,
)
from nameko.rpc import RpcProxy, rpc
from nameko.runners import ServiceRunner, run_services
from nameko.standalone.rpc import ClusterRpcClient, ClusterRpcProxy, ServiceRpcProxy
from nameko.testing.utils import get_container
from tests.raw_rpc import raw_rpc_request
from tests.waiting import wait_until

TIMEOUT = 10


@deserialize_to_instance
class Refused(Exception):
    pass


class Echo:
    name = "echo"

    @rpc
    def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    @rpc
    def hello(self, name, greeting="hi"):
        return f"{greeting}, {name}"

    @rpc
    def boom(self):
        raise ValueError("bad thing", 42)

    @rpc(expected_exceptions=Refused)
    def refuse(self):
        raise Refused("no")

    @rpc
    def unserializable(self):
        return object()

    @rpc
    def wait(self, name):
        GATES[name].wait(TIMEOUT)
        return name


GATES: dict[str, threading.Event] = {}


class Front:
    name = "front"
    echo = RpcProxy("echo")
    nowhere = RpcProxy("nowhere")

    @rpc
    def relay(self, name):
        return self.echo.hello(name)

    @rpc
    def relay_async(self, names):
        replies = [self.echo.hello.call_async(n) for n in names]
        return [r.result() for r in replies]

    @rpc
    def call_missing(self):
        try:
            self.nowhere.anything()
        except UnknownService as exc:
            return str(exc)


@pytest.fixture
def running(config):
    with run_services(config, Echo, Front) as runner:
        yield runner


@pytest.fixture
def client(config, running):
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        yield proxy


def test_call_and_call_async(client):
    assert client.echo.hello("bob") == "hi, bob"
    assert client.echo.hello(name="ann", greeting="yo") == "yo, ann"
    reply = client.echo.echo.call_async(1, [2], x={"y": None})
    assert reply.result() == {"args": [1, [2]], "kwargs": {"x": {"y": None}}}
    assert reply.result() == {"args": [1, [2]], "kwargs": {"x": {"y": None}}}  # cached


def test_remote_errors(client):
    with pytest.raises(RemoteError) as raised:
        client.echo.boom()
    assert raised.value.exc_type == "ValueError"
    assert str(raised.value) == "ValueError ('bad thing', 42)"
    with pytest.raises(Refused, match="no"):  # registered: rebuilt as itself
        client.echo.refuse()
    with pytest.raises(
        RemoteError, match="UnserializableValueError Unserializable value: `<object"
    ):
        client.echo.unserializable()


def test_bad_calls_are_answered_with_typed_errors(client):
    with pytest.raises(MethodNotFound, match="nosuch"):
        client.echo.nosuch()
    with pytest.raises(IncorrectSignature) as raised:
        client.echo.hello(1, 2, 3, 4)
    assert str(raised.value) == "hello() takes from 2 to 3 positional arguments but 5 were given"
    with pytest.raises(UnknownService, match="Unknown service `nowhere`"):
        client.nowhere.method()
    with pytest.raises(UnknownService):
        client.nowhere.method.call_async()
    assert client.echo.hello("still fine") == "hi, still fine"


def test_rpc_proxy_between_services(client):
    assert client.front.relay("x") == "hi, x"
    assert client.front.relay_async(["a", "b", "c"]) == ["hi, a", "hi, b", "hi, c"]
    assert client.front.call_missing() == "Unknown service `nowhere`"


def test_names_that_are_not_identifiers(config):
    class Dashed:
        name = "with-dashes"

        @rpc
        def ping(self):
            return "pong"

    with run_services(config, Dashed), ClusterRpcProxy(config) as proxy:
        assert proxy["with-dashes"].ping() == "pong"
        assert proxy["with-dashes"]["ping"]() == "pong"


def test_timeout_raises_and_the_client_stays_usable(client):
    GATES["slow"] = threading.Event()
    reply = client.echo.wait.call_async("slow")
    reply.reply_event.timeout = 0.2
    with pytest.raises(RpcTimeout) as raised:
        reply.result()
    assert raised.value.args == (0.2,)
    GATES["slow"].set()
    assert client.echo.hello("after") == "hi, after"


def test_standalone_timeout_option(config, running):
    GATES["t1"] = threading.Event()
    with ClusterRpcProxy(config, timeout=0.2) as proxy:
        with pytest.raises(RpcTimeout):
            proxy.echo.wait("t1")
        GATES["t1"].set()
        assert proxy.echo.hello("late") == "hi, late"  # the late reply was discarded


def test_rpc_proxy_timeout_per_proxy_and_from_config(config):
    GATES["t2"] = threading.Event()

    class Impatient:
        name = "impatient"
        echo = RpcProxy("echo", timeout=0.2)

        @rpc
        def call(self):
            try:
                return self.echo.wait("t2")
            except RpcTimeout as exc:
                return f"timed out after {exc.args[0]}"

    with run_services(config, Echo, Impatient), ClusterRpcProxy(config) as proxy:
        assert proxy.impatient.call() == "timed out after 0.2"
        GATES["t2"].set()  # let the abandoned worker finish so the stop is quick

    GATES["t3"] = threading.Event()

    class Configured:
        name = "configured"
        echo = RpcProxy("echo")

        @rpc
        def call(self):
            try:
                return self.echo.wait("t3")
            except RpcTimeout as exc:
                return f"timed out after {exc.args[0]}"

    config = dict(config, RPC_TIMEOUT=0.3)
    with run_services(config, Echo, Configured), ClusterRpcProxy(config) as proxy:
        assert proxy.configured.call() == "timed out after 0.3"
        GATES["t3"].set()


def test_context_data_and_call_id_stacks_propagate(config):
    seen = {}

    class Outer:
        name = "outer"
        inner = RpcProxy("inner")

        @rpc
        def call(self):
            return self.inner.call()

    class Inner:
        name = "inner"

        @rpc
        def call(self):
            return "ok"

    runner = ServiceRunner(config)
    runner.add_service(Outer)
    runner.add_service(Inner)
    inner = next(c for c in runner.containers if c.service_name == "inner")
    original = inner._worker_result

    def record(worker_ctx, result=None, exc_info=None):
        seen["data"] = dict(worker_ctx.data)
        seen["stack"] = list(worker_ctx.call_id_stack)
        return original(worker_ctx, result, exc_info)

    inner._worker_result = record
    runner.start()
    try:
        with ClusterRpcProxy(config, context_data={"language": "fr", "user_id": 7}) as proxy:
            assert proxy.outer.call() == "ok"
    finally:
        runner.stop()
    assert seen["data"] == {"language": "fr", "user_id": 7}
    first, second, third = seen["stack"]
    assert first.startswith("standalone_rpc_proxy.call.")
    assert second.startswith("outer.call.") and third.startswith("inner.call.")


def test_one_standalone_client_shared_by_fifty_threads(config, running):
    proxy = ClusterRpcProxy(config, timeout=TIMEOUT).start()
    results: dict[int, object] = {}
    errors = []

    def call(i):
        try:
            for j in range(5):
                results[(i, j)] = proxy.echo.hello(f"{i}-{j}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 3)
    assert not errors
    assert results == {(i, j): f"hi, {i}-{j}" for i in range(50) for j in range(5)}


def test_client_without_with_start_stop_and_lazy_start(config, running):
    # seed 004: `rpc_proxy = ClusterRpcProxy(config)` then use it directly
    lazy = ClusterRpcProxy(config)
    assert lazy.echo.hello("lazy") == "hi, lazy"
    lazy.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        lazy.echo.hello("again")

    manual = ClusterRpcProxy(config)
    proxy = manual.start()
    assert proxy.echo.hello("manual") == "hi, manual"
    manual.stop()
    with pytest.raises(RuntimeError, match="This consumer has been stopped"):
        proxy.echo.hello("after stop")


def test_service_rpc_proxy_and_nameko3_client(config, running):
    with ServiceRpcProxy("echo", config) as echo:
        assert echo.hello("svc") == "hi, svc"
    with ClusterRpcClient(uri=config["AMQP_URI"]) as client:
        assert client.echo.hello("three") == "hi, three"


@pytest.mark.parametrize(
    "body,content_type,exc_type,fragment",
    [
        (b"{not json", "application/json", "MalformedRequest", "could not be decoded"),
        (b"\xff\xfe\x00", "application/json", "MalformedRequest", "could not be decoded"),
        (
            b'{"args": []}',
            "application/json",
            "MalformedRequest",
            "Message missing `args` or `kwargs`",
        ),
        (b'"a string"', "application/json", None, ""),
        (b"x", "application/x-python-serialize", "MalformedRequest", "could not be decoded"),
    ],
)
def test_bad_requests_get_error_replies_and_the_service_lives(
    config, running, client, body, content_type, exc_type, fragment
):
    reply = raw_rpc_request(config["AMQP_URI"], "echo.hello", body, content_type=content_type)
    assert reply["result"] is None
    if exc_type:
        assert reply["error"]["exc_type"] == exc_type
    assert fragment in reply["error"]["value"]
    assert client.echo.hello("alive") == "hi, alive"


def test_request_without_reply_to_is_rejected_and_logged(config, running, client, caplog):
    raw_rpc_request(
        config["AMQP_URI"], "echo.hello", b'{"args": ["x"], "kwargs": {}}', reply_to=False
    )
    # the confirmed raw request is queued ahead of this call: once this is
    # answered, the bad one has been dealt with
    assert client.echo.hello("alive") == "hi, alive"
    assert sum("without reply_to" in r.getMessage() for r in caplog.records) == 1


def test_run_services_stops_even_when_the_block_raises(config):
    with pytest.raises(KeyError):
        with run_services(config, Echo) as runner:
            container = next(iter(runner.containers))
            raise KeyError("oops")
    assert container._died.ready()


def test_graceful_stop_finishes_in_flight_work_and_replies(config):
    GATES["drain"] = threading.Event()
    container = ServiceContainer(Echo, config)
    container.start()
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        reply = proxy.echo.wait.call_async("drain")
        stopper = threading.Thread(target=container.stop)
        # let the request reach the worker before stopping
        wait_until(lambda: container._worker_pool.running() == 1)
        stopper.start()
        GATES["drain"].set()
        assert reply.result() == "drain"
        stopper.join(TIMEOUT)
    assert not stopper.is_alive()


def test_killed_container_requeues_in_flight_requests(config):
    GATES["k"] = threading.Event()
    first = ServiceContainer(Echo, config)
    first.start()
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        reply = proxy.echo.wait.call_async("k")
        wait_until(lambda: first._worker_pool.running() == 1)
        first.kill()  # the worker can't be stopped; its request goes back to the queue
        second = ServiceContainer(Echo, config)
        second.start()
        GATES["k"].set()
        assert reply.result() == "k"  # answered by whoever finished first
        second.stop()


def test_pipelined_call_to_a_vanished_service_raises_from_result(config, running, client):
    """Calls to a service seen alive are pipelined (call_async doesn't wait
    for the broker's confirm); if it has vanished since, `.result()` says so."""
    assert client.echo.hello("seen") == "hi, seen"
    get_container(running, Echo).kill()  # alive, it would declare its queue again
    broker = connect(config["AMQP_URI"])
    broker.delete_queue("rpc-echo")
    broker.close()
    reply = client.echo.hello.call_async("gone")
    with pytest.raises(UnknownService, match="echo"):
        reply.result()
    with pytest.raises(UnknownService):  # known to be gone: raised at call time again
        client.echo.hello.call_async("still gone")
