"""nameko-amqp-retry 0.7.1, unchanged, on shimeji and a real RabbitMQ.

The extension reaches below the public API: it subclasses ``Rpc``,
``RpcConsumer`` and ``Consumer``, overrides ``RpcConsumer.handle_message``,
edits ``message.headers``, republishes ``message.properties`` and
``message.body`` through ``nameko.amqp.publish.Publisher`` with kombu
entities, and acks through ``rpc_consumer.queue_consumer``. A failing
entrypoint raising `Backoff` is republished to a headers exchange
(``backoff``) into a queue whose messages expire and are dead-lettered back
to the entrypoint's queue; RabbitMQ counts the rounds in ``x-death``.
Dead-lettering is broker behaviour, so these tests need RabbitMQ.

Installed ``--no-deps`` by scripts/bootstrap (its ``nameko`` requirement
would bring in the real nameko); its own imports (kombu, wrapt, six) come
from our test extra.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections import Counter

import kombu
import kombu.serialization
import nameko_amqp_retry
import pytest
from nameko_amqp_retry import Backoff
from nameko_amqp_retry.events import event_handler
from nameko_amqp_retry.rpc import rpc

from nameko._concurrency import Event, Lock
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from tests.compat.ext_support import assert_nameko_is_shimeji

pytestmark = pytest.mark.rabbit

TIMEOUT = 20


class QuickBackoff(Backoff):
    schedule = (100, 200)  # milliseconds in the backoff queue
    random_sigma = 0  # no jitter: the queue names are predictable


class OneRetry(QuickBackoff):
    limit = 1


class Attempts:
    """What the workers saw, across threads."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.parents: list[list[str]] = []
        self.deaths: list[list[dict]] = []
        self.done = Event()
        self._lock = Lock()

    def record(self, key: str, worker_ctx: object, headers: dict) -> int:
        with self._lock:
            self.count[key] += 1
            self.parents.append(list(worker_ctx.parent_call_stack))
            self.deaths.append(headers.get("x-death", []))
            return self.count[key]


attempts = Attempts()


class ContextSpy(DependencyProvider):
    """Gives the worker its own context (parent stack and raw context data)."""

    def get_dependency(self, worker_ctx):
        return worker_ctx


class RetryingService:
    name = "retrying"
    ctx = ContextSpy()

    @rpc
    def flaky(self, key: str) -> str:
        n = attempts.record(key, self.ctx, self.ctx.data)
        if n < 3:
            raise QuickBackoff()
        return f"{key} done after {n} attempts"

    @rpc
    def hopeless(self, key: str) -> None:
        attempts.record(key, self.ctx, self.ctx.data)
        raise OneRetry()

    @event_handler("publisher", "thing_happened")
    def on_thing(self, payload: dict) -> None:
        n = attempts.record(payload["key"], self.ctx, self.ctx.data)
        if n < 3:
            raise QuickBackoff()
        attempts.done.set()


@pytest.fixture
def service(rabbit_config, container_factory):
    global attempts
    attempts = Attempts()
    container = container_factory(RetryingService, rabbit_config)
    container.start()
    return container


def test_the_extension_runs_on_shimeji():
    assert_nameko_is_shimeji()  # the package and the `nameko` metadata
    assert importlib.metadata.version("nameko-amqp-retry") == "0.7.1"
    assert nameko_amqp_retry.entrypoint_retry  # the whole package imports


def test_rpc_backs_off_and_then_answers(service, rabbit_config):
    with ServiceRpcProxy("retrying", rabbit_config, timeout=TIMEOUT) as proxy:
        assert proxy.flaky("a") == "a done after 3 attempts"
    assert attempts.count["a"] == 3
    first, second, third = attempts.parents
    # each retry arrives with the failed worker's call stack, marked ".backoff"
    assert len(first) == 1 and first[0].startswith("standalone_rpc_proxy.call.")
    assert second[0] == first[0] and second[-1].startswith("retrying.flaky.")
    assert second[-1].endswith(".backoff")
    assert third[-1].endswith(".backoff") and third[-1] != second[-1]
    # and RabbitMQ's dead-letter history, which Backoff counts
    assert attempts.deaths[0] == []
    assert [d["exchange"] for d in attempts.deaths[2]] == ["backoff", "backoff"]
    assert sorted(d["queue"] for d in attempts.deaths[2]) == ["backoff--100ms", "backoff--200ms"]


def test_rpc_gives_up_after_its_limit(service, rabbit_config):
    with ServiceRpcProxy("retrying", rabbit_config, timeout=TIMEOUT) as proxy:
        with pytest.raises(RemoteError) as raised:
            proxy.hopeless("b")
    assert raised.value.exc_type == "Expired"
    assert "Backoff aborted after '1' retries" in raised.value.value
    assert attempts.count["b"] == 2


def test_event_handler_backs_off_and_then_succeeds(service, rabbit_config):
    dispatch = event_dispatcher(rabbit_config)
    dispatch("publisher", "thing_happened", {"key": "c"})
    assert attempts.done.wait(TIMEOUT)
    assert attempts.count["c"] == 3
    assert attempts.parents[1][-1].startswith("retrying.on_thing.")
    assert attempts.parents[1][-1].endswith(".backoff")


def _upper_dumps(obj: object) -> str:
    return json.dumps(obj).upper()


def _upper_loads(text: str) -> object:
    return json.loads(text.lower())


@pytest.fixture
def upperjson(rabbit_config):
    """Its own tests' pattern: a serializer registered with kombu directly,
    named in the config, and gone again after the test."""
    kombu.serialization.register(
        "upperjson", _upper_dumps, _upper_loads, "application/x-upper-json", "utf-8"
    )
    yield {**rabbit_config, "serializer": "upperjson"}
    kombu.serialization.unregister("upperjson")


def test_a_serializer_registered_with_kombu_carries_the_retries(
    upperjson, rabbit_config, container_factory
):
    global attempts
    attempts = Attempts()
    container_factory(RetryingService, upperjson).start()
    with ServiceRpcProxy("retrying", upperjson, timeout=TIMEOUT) as proxy:
        assert proxy.flaky("u") == "u done after 3 attempts"  # requests and replies in it
    assert attempts.count["u"] == 3  # the backoff republished the kombu-encoded body


def test_kombu_registered_serializer_on_the_wire(upperjson, rabbit_config):
    """The bodies really are kombu's encoding: a kombu consumer reads them."""
    dispatch = event_dispatcher(upperjson)
    with kombu.Connection(rabbit_config["AMQP_URI"]) as conn:
        exchange = kombu.Exchange("publisher.events", type="topic", durable=True)
        queue = kombu.Queue("upper-probe", exchange, "thing_happened", auto_delete=True)
        with conn.SimpleQueue(queue) as simple:
            dispatch("publisher", "thing_happened", {"key": "wire"})
            message = simple.get(timeout=TIMEOUT)
            assert message.content_type == "application/x-upper-json"
            assert message.body in (b'{"KEY": "WIRE"}', '{"KEY": "WIRE"}')
            assert message.decode() == {"key": "wire"}
            message.ack()
