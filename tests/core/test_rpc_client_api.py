"""nameko 3's RPC client API beside nameko 2.x's, on the in-memory broker.

`Client`/`RpcCall` (given by `ClusterRpc`, `ServiceRpc`, `ClusterRpcClient`,
`ServiceRpcClient`) and the 2.x `ServiceProxy`/`MethodProxy`/`RpcReply`
(given by `RpcProxy`, `ClusterRpcProxy`, and built by 2.14 extensions around
a `ReplyListener`) all run on the one caller of `nameko._rpc.caller`.
"""

from __future__ import annotations

import re
import threading

import pytest

import nameko
from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, NotFound
from nameko.containers import ServiceContainer
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import (
    Client,
    ClusterRpc,
    MethodProxy,
    Proxy,
    ReplyListener,
    RpcCall,
    RpcProxy,
    RpcReply,
    ServiceProxy,
    ServiceRpc,
    rpc,
)
from nameko.standalone.rpc import (
    ClusterRpcClient,
    ClusterRpcProxy,
    ServiceRpcClient,
    ServiceRpcProxy,
)

TIMEOUT = 10
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
GATE = threading.Event()


class CallStack(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return list(worker_ctx.call_id_stack)


class Echo:
    name = "echo"
    stack = CallStack()

    @rpc
    def hello(self, name, greeting="hi"):
        return f"{greeting}, {name}"

    @rpc
    def boom(self):
        raise ValueError("bad thing", 42)

    @rpc
    def stack_of_call(self):
        return self.stack

    @rpc
    def wait(self):
        GATE.wait(TIMEOUT)
        return "done"


class Front:
    """Every way to call `echo` from inside a service."""

    name = "front"
    echo3 = ServiceRpc("echo", exchange="elsewhere", routing_key="x.y", reply_to="nobody")
    cluster = ClusterRpc(mandatory=False, correlation_id="fixed")
    echo2 = RpcProxy("echo")

    @rpc
    def kinds(self):
        return [type(self.echo3).__name__, type(self.cluster).__name__, type(self.echo2).__name__]

    @rpc
    def via_service_rpc(self, name):
        return self.echo3.hello(name)

    @rpc
    def via_cluster_rpc(self, name):
        return self.cluster.echo.hello(name, greeting="yo")

    @rpc
    def via_item_access(self, name):
        return self.cluster["echo"]["hello"](name)

    @rpc
    def fan_out(self, names):
        calls = [self.echo3.hello.call_async(n) for n in names]
        return [call.result() for call in calls]

    @rpc
    def remote_error(self):
        try:
            self.cluster.echo.boom()
        except RemoteError as exc:
            return exc.exc_type

    @rpc
    def unknown(self):
        try:
            self.cluster.nowhere.method()
        except UnknownService as exc:
            return exc.args[0]

    @rpc
    def stacks(self):
        return {"3": self.echo3.stack_of_call(), "2": self.echo2.stack_of_call()}

    @rpc
    def listener_of_2x_proxy(self):
        return type(self.echo2.reply_listener).__name__


class LegacyExtension(DependencyProvider):
    """The 2.14 way extensions build proxies: around the container's ReplyListener."""

    rpc_reply_listener = ReplyListener()

    def get_dependency(self, worker_ctx):
        listener = self.rpc_reply_listener
        return {
            "service": ServiceProxy(worker_ctx, "echo", listener),
            "method": MethodProxy(worker_ctx, "echo", "hello", listener, use_confirms=True),
        }


class UsesLegacyExtension:
    name = "legacy_ext"
    ext = LegacyExtension()

    @rpc
    def call(self, name):
        service, method = self.ext["service"], self.ext["method"]
        assert service.reply_listener is self.ext["method"].reply_listener
        assert isinstance(service.reply_listener, ReplyListener)
        reply = method.call_async(name)
        assert isinstance(reply, RpcReply)
        return [service.hello(name), reply.result()]


@pytest.fixture
def uri(config):
    return config["AMQP_URI"]


@pytest.fixture
def running(start):
    containers = [start(Echo), start(Front), start(UsesLegacyExtension)]
    yield containers


@pytest.fixture
def global_config(uri):
    with nameko.config.patch({"AMQP_URI": uri}):
        yield


# -- Client and RpcCall without a broker --------------------------------------


class Recorder:
    """Stands in for a caller: records requests, answers from a dict."""

    def __init__(self, bodies=None):
        self.published = []
        self.registered = []
        self.bodies = bodies or {}

    def publish(self, payload, **kwargs):
        self.published.append((payload, kwargs))

    def register_for_reply(self, correlation_id):
        self.registered.append(correlation_id)
        return lambda: self.bodies.get("reply", {"result": "ok", "error": None})


def test_client_narrows_service_then_method():
    rec = Recorder()
    client = Client(rec.publish, rec.register_for_reply, {"language": "fr"})
    assert Proxy is Client
    assert client.identifier == "*.*"
    svc = client.svc
    assert (svc.service_name, svc.method_name, svc.identifier) == ("svc", None, "svc.*")
    method = svc.method
    assert method.identifier == "svc.method"
    assert client["a-b"]["c"].identifier == "a-b.c"
    with pytest.raises(AttributeError):
        method.third  # noqa: B018
    with pytest.raises(AttributeError):
        method["third"]  # noqa: B018
    assert not hasattr(client, "_private")
    assert not hasattr(svc, "__deepcopy__")
    assert client["_private"].identifier == "_private.*"  # item access takes any name


@pytest.mark.parametrize(
    "path,identifier", [((), "*.*"), (("svc",), "svc.*")], ids=["cluster", "service"]
)
def test_calling_an_unspecified_client_is_a_value_error(path, identifier):
    rec = Recorder()
    client = Client(rec.publish, rec.register_for_reply, {})
    for name in path:
        client = client[name]
    with pytest.raises(ValueError, match=re.escape(f"Cannot call unspecified method {identifier}")):
        client()
    with pytest.raises(ValueError):
        client.call_async()
    assert rec.published == [] and rec.registered == []


def test_client_registers_then_publishes_with_publisher_keywords():
    rec = Recorder()
    client = Client(rec.publish, rec.register_for_reply, {"language": "fr", "dropped": None})
    with pytest.warns(UserWarning, match="dropped"):
        call = client.svc.method.call_async(1, k=2)
    assert isinstance(call, RpcCall)
    assert rec.registered == [call.correlation_id]
    [(payload, kwargs)] = rec.published
    assert payload == {"args": [1], "kwargs": {"k": 2}}
    assert kwargs == {
        "routing_key": "svc.method",
        "correlation_id": call.correlation_id,
        "extra_headers": {"nameko.language": "fr"},
        "mandatory": True,
    }
    assert call.result() == "ok"


def test_rpc_call_caches_the_response_and_decodes_errors():
    answers = iter([{"result": None, "error": {"exc_type": "X", "value": "v", "exc_args": []}}])
    sent = []
    call = RpcCall("cid", lambda *a, **kw: sent.append((a, kw)), lambda: next(answers))
    call.send_request(1, b=2)
    assert sent == [((1,), {"b": 2})]
    assert call.get_response() is call.get_response()  # waited for once
    for _ in range(2):
        with pytest.raises(RemoteError, match="X v"):
            call.result()


# -- inside services ----------------------------------------------------------


def test_cluster_rpc_and_service_rpc_give_clients_rpc_proxy_the_2x_proxy(running):
    with ClusterRpcProxy(running[0].config, timeout=TIMEOUT) as proxy:
        front = proxy.front
        assert front.kinds() == ["Client", "Client", "ServiceProxy"]
        assert front.via_service_rpc("a") == "hi, a"
        assert front.via_cluster_rpc("b") == "yo, b"
        assert front.via_item_access("c") == "hi, c"
        assert front.fan_out(["x", "y", "z"]) == ["hi, x", "hi, y", "hi, z"]
        assert front.remote_error() == "ValueError"
        assert front.unknown() == "nowhere"
        assert front.listener_of_2x_proxy() == "ReplyListener"


def test_clients_in_a_service_forward_the_call_id_stack(running):
    with ClusterRpcProxy(running[0].config, timeout=TIMEOUT) as proxy:
        stacks = proxy.front.stacks()
    for stack in stacks.values():
        assert [re.sub(UUID, "<id>", entry) for entry in stack] == [
            "standalone_rpc_proxy.call.<id>",
            "front.stacks.<id>",
            "echo.stack_of_call.<id>",
        ]
    assert stacks["3"][:2] == stacks["2"][:2]  # one worker, one stack


def test_all_rpc_dependencies_share_the_containers_reply_listener(running):
    front = running[1]
    listeners = {
        dep.rpc_reply_listener if isinstance(dep, RpcProxy) else dep.reply_listener
        for dep in front.dependencies
    }
    assert len(listeners) == 1


def test_2x_proxies_built_around_a_reply_listener_work(running):
    with ServiceRpcProxy("legacy_ext", running[0].config, timeout=TIMEOUT) as legacy:
        assert legacy.call("ext") == ["hi, ext", "hi, ext"]


def test_uri_option_gives_a_dependency_its_own_broker(start, container_factory, uri):
    """``ServiceRpc("echo", uri=...)`` reaches a service on another broker, and
    its replies come back over that connection."""
    other_uri = uri + "-other"
    start_other = container_factory(Echo, {"AMQP_URI": other_uri})
    start_other.start()

    class Bridge:
        name = "bridge"
        remote = ServiceRpc("echo", uri=other_uri)
        local = ClusterRpc()

        @rpc
        def both(self):
            try:
                self.local.echo.hello("local")
            except UnknownService:
                local = "no echo here"
            return [self.remote.hello("remote"), local]

    bridge = start(Bridge)
    [remote] = [d for d in bridge.dependencies if isinstance(d, ServiceRpc)]
    assert remote.reply_listener is None  # no reply queue on the container's broker for it
    with ServiceRpcProxy("bridge", bridge.config, timeout=TIMEOUT) as proxy:
        assert proxy.both() == ["hi, remote", "no echo here"]
    bridge.stop()  # closes the dependency's own connection


def test_timeout_option_inside_a_service(start):
    class Impatient:
        name = "impatient"
        echo = ServiceRpc("echo", timeout=0.05)

        @rpc
        def call(self):
            try:
                self.echo.wait()
            except RpcTimeout as exc:
                return list(exc.args)

    GATE.clear()
    start(Echo)
    impatient = start(Impatient)
    try:
        with ServiceRpcProxy("impatient", impatient.config, timeout=TIMEOUT) as proxy:
            assert proxy.call() == []  # nameko 3's client: RpcTimeout() without args
    finally:
        GATE.set()


# -- standalone: nameko 3 ---------------------------------------------------------


def reply_queue_exists(uri: str, name: str) -> bool:
    broker = connect(uri)
    try:
        broker.declare([Exchange("probe", "fanout", durable=False), Binding(name, "probe")])
    except NotFound:
        return False
    finally:
        broker.close()
    return True


@pytest.mark.usefixtures("global_config")
def test_cluster_rpc_client_uses_the_global_config(running, uri):
    client_obj = ClusterRpcClient(timeout=TIMEOUT)
    with client_obj as client:
        assert isinstance(client, Client)
        assert client.echo.hello("three") == "hi, three"
        assert client["echo"].hello.call_async("async").result() == "hi, async"
        queue = f"rpc.reply-standalone_rpc_client-{client_obj._link.replies.routing_key}"
        assert reply_queue_exists(uri, queue)
        with pytest.raises(ValueError, match=re.escape("unspecified method echo.*")):
            client.echo()
        assert not hasattr(client, "_private")


@pytest.mark.usefixtures("global_config")
def test_each_call_gets_a_new_call_id(running):
    with ClusterRpcClient(context_data={"language": "fr"}, timeout=TIMEOUT) as client:
        first, second = client.echo.stack_of_call(), client.echo.stack_of_call()
    pattern = f"standalone_rpc_client\\.({UUID})\\.({UUID})"
    (client1, call1), (client2, call2) = (
        re.fullmatch(pattern, s[0]).groups() for s in (first, second)
    )
    assert client1 == client2 and call1 != call2
    assert len(first) == 2 and first[1].startswith("echo.stack_of_call.")


def test_uri_option_without_global_config(running, uri):
    with ServiceRpcClient("echo", uri=uri, timeout=TIMEOUT) as echo:
        assert isinstance(echo, Client) and echo.identifier == "echo.*"
        assert echo.hello("svc") == "hi, svc"
    with ServiceRpcClient("echo", None, TIMEOUT, uri=uri) as echo:  # nameko 3's order
        assert echo.hello("positional") == "hi, positional"


@pytest.mark.usefixtures("global_config")
def test_standalone_client_timeout_and_stop(running):
    GATE.clear()
    try:
        client_obj = ClusterRpcClient(timeout=0.05)
        client = client_obj.start()
        assert client_obj.start() is client
        with pytest.raises(RpcTimeout) as exc_info:
            client.echo.wait()
        assert exc_info.value.args == ()
        assert client.echo.hello("still usable") == "hi, still usable"
    finally:
        GATE.set()
    client_obj.stop()
    with pytest.raises(RuntimeError, match="^Stopped and can no longer be used$"):
        client.echo.hello("after stop")
    with pytest.raises(RuntimeError, match="^Stopped and can no longer be used$"):
        client_obj.echo.hello("after stop")


@pytest.mark.usefixtures("global_config")
def test_stop_fails_waiting_calls(running):
    GATE.clear()
    try:
        client_obj = ClusterRpcClient()
        call = client_obj.start().echo.wait.call_async()
        client_obj.stop()
        with pytest.raises(RuntimeError, match="Stopped"):
            call.result()
    finally:
        GATE.set()


@pytest.mark.usefixtures("global_config")
def test_clients_start_on_first_use(running):
    lazy = ClusterRpcClient(timeout=TIMEOUT)
    try:
        assert lazy.echo.hello("lazy") == "hi, lazy"
    finally:
        lazy.stop()


# -- standalone: nameko 2.x ---------------------------------------------------------


@pytest.mark.usefixtures("global_config")
def test_2x_standalone_proxies_without_config_use_the_global_one(running):
    with ClusterRpcProxy(timeout=TIMEOUT) as proxy:
        assert proxy.echo.hello("global") == "hi, global"
        assert isinstance(proxy.echo, ServiceProxy)
        assert isinstance(proxy.echo.hello.call_async("x"), RpcReply)
        assert not hasattr(proxy, "_private")
        assert proxy._reply_listener.routing_key  # the reply queue behind it
    with ServiceRpcProxy("echo", timeout=TIMEOUT) as echo:
        assert echo.hello("global") == "hi, global"


def test_2x_standalone_timeout_keeps_its_argument(running):
    GATE.clear()
    try:
        with ClusterRpcProxy(running[0].config, timeout=0.05) as proxy:
            with pytest.raises(RpcTimeout) as exc_info:
                proxy.echo.wait()
        assert exc_info.value.args == (0.05,)
    finally:
        GATE.set()


def test_2x_cluster_proxy_accepts_a_reply_listener_shape(running):
    """ClusterProxy(worker_ctx, reply_listener): the listener's caller is used."""
    from nameko.standalone.rpc import ClusterProxy

    with ClusterRpcProxy(running[0].config, timeout=TIMEOUT) as proxy:
        again = ClusterProxy(proxy._worker_ctx, proxy._caller)
        assert again._reply_listener is proxy._reply_listener
        assert again.echo.hello("again") == "hi, again"
    with pytest.raises(TypeError, match="ReplyListener"):
        ClusterProxy(None, object())


def test_containers_without_config_and_clients_without_config(uri):
    with nameko.config.patch({"AMQP_URI": uri}):
        container = ServiceContainer(Echo)
        container.start()
        try:
            with ClusterRpcClient(timeout=TIMEOUT) as client:
                assert client.echo.hello("no config anywhere") == "hi, no config anywhere"
        finally:
            container.stop()
