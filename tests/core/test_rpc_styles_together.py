"""nameko 3-style and 2.x-style services and
clients in one process, calling each other, on both brokers.

nameko 3 style: `from nameko import config`, `ServiceRpc`, `ClusterRpc`,
`ClusterRpcClient()`, `config.patch`, containers without a config argument.
nameko 2 style: `RpcProxy`, `ClusterRpcProxy(config)`, containers given a dict.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from nameko import config
from nameko.containers import ServiceContainer
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import ClusterRpc, RpcProxy, ServiceRpc, rpc
from nameko.standalone.rpc import ClusterRpcClient, ClusterRpcProxy, ServiceRpcClient

TIMEOUT = 20


class ThreeStyle:
    name = "three"
    two = ServiceRpc("two")
    cluster = ClusterRpc()

    @rpc
    def hello(self, name):
        return f"three greets {name} ({config['GREETING']})"

    @rpc
    def ask_two(self, name):
        return self.two.hello(name)

    @rpc
    def ask_both_async(self, name):
        calls = [self.cluster[svc].hello.call_async(name) for svc in ("two", "three")]
        return [call.result() for call in calls]

    @rpc
    def two_fails(self):
        try:
            self.cluster.two.fail()
        except RemoteError as exc:
            return exc.exc_type


class TwoStyle:
    name = "two"
    three = RpcProxy("three")

    @rpc
    def hello(self, name):
        return f"two greets {name}"

    @rpc
    def ask_three(self, name):
        return self.three.hello(name)

    @rpc
    def round_trip(self, name):
        return self.three.ask_two(name)  # two -> three -> two

    @rpc
    def fail(self):
        raise KeyError("no")


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("rabbit", id="rabbit", marks=pytest.mark.rabbit),
    ]
)
def broker_uri(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbit":
        return request.getfixturevalue("rabbit_config")["AMQP_URI"]
    return f"memory://styles-{secrets.token_hex(6)}"


@pytest.fixture
def both_styles(broker_uri: str) -> Iterator[str]:
    """`three` on the global config (nameko 3), `two` given a dict (nameko 2)."""
    with config.patch({"AMQP_URI": broker_uri, "GREETING": "bonjour"}):
        three = ServiceContainer(ThreeStyle)
        two = ServiceContainer(TwoStyle, {"AMQP_URI": broker_uri})
        for container in (three, two):
            container.start()
        try:
            yield broker_uri
        finally:
            for container in (two, three):
                container.stop()


def test_nameko3_client_calls_both_styles(both_styles):
    with ClusterRpcClient(timeout=TIMEOUT) as client:
        assert client.three.hello("client3") == "three greets client3 (bonjour)"
        assert client.two.hello("client3") == "two greets client3"
        assert client.three.ask_two("a") == "two greets a"
        assert client.two.ask_three("b") == "three greets b (bonjour)"
        assert client.two.round_trip("c") == "two greets c"
        assert client.three.ask_both_async("d") == ["two greets d", "three greets d (bonjour)"]
        assert client.three.two_fails() == "KeyError"
        with pytest.raises(UnknownService):
            client.nowhere.hello("x")


def test_nameko2_client_calls_both_styles(both_styles):
    with ClusterRpcProxy({"AMQP_URI": both_styles}, timeout=TIMEOUT) as proxy:
        assert proxy.three.hello("client2") == "three greets client2 (bonjour)"
        assert proxy.two.ask_three("e") == "three greets e (bonjour)"
        replies = [proxy.three.ask_two.call_async(n) for n in ("f", "g")]
        assert [r.result() for r in replies] == ["two greets f", "two greets g"]
        with pytest.raises(RemoteError) as exc_info:
            proxy.two.fail()
        assert exc_info.value.exc_type == "KeyError"


def test_both_client_styles_at_once(both_styles):
    @config.patch({"GREETING": "hola"})
    def nested():
        with ServiceRpcClient("three", timeout=TIMEOUT) as three:
            return three.hello("nested")

    with ClusterRpcProxy(timeout=TIMEOUT) as proxy, ClusterRpcClient(timeout=TIMEOUT) as client:
        assert proxy.two.hello("2") == client.two.hello("2") == "two greets 2"
        # the service reads the global config at call time
        assert nested() == "three greets nested (hola)"
        assert client.three.hello("after") == "three greets after (bonjour)"
