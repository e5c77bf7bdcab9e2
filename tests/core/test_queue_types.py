"""``QUEUE_TYPE`` on the memory broker, which refuses queue type
changes as RabbitMQ does (tests/contract/test_queue_types.py)."""

from __future__ import annotations

import pytest

from nameko._broker import connect
from nameko._broker.base import PreconditionFailed, Queue
from nameko._protocol.queues import QueueTypeMismatch
from nameko.events import BROADCAST, SINGLETON, event_handler
from nameko.exceptions import ConfigurationError
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder

QUORUM = {"x-queue-type": "quorum"}


def make_service(name: str, recorder: Recorder):
    class Service:
        @rpc
        def echo(self, value):
            return value

        @event_handler("src", "thing")
        def pooled(self, data):
            recorder.add(("pooled", data))

        @event_handler("src", "thing", handler_type=SINGLETON)
        def single(self, data):
            recorder.add(("single", data))

        @event_handler("src", "thing", handler_type=BROADCAST, reliable_delivery=False)
        def broad(self, data):
            recorder.add(("broad", data))

        @event_handler("src", "other", reliable_delivery=False)
        def unreliable(self, data):
            recorder.add(("unreliable", data))

    Service.name = name
    return Service


def queue_type(config, name: str) -> str:
    """Which type ``name`` has, found out the way a client would: the
    broker refuses a declaration with another type."""
    broker = connect(config["AMQP_URI"])
    try:
        for kind, arguments in (("quorum", QUORUM), ("classic", {})):
            try:
                broker.declare([Queue(name, arguments=arguments)])
            except PreconditionFailed:
                continue
            return kind
        raise AssertionError(f"{name} is neither classic nor quorum")
    finally:
        broker.close()


def test_quorum_queues_serve_rpc_and_events(start, config) -> None:
    recorder = Recorder()
    start(make_service("svc", recorder), QUEUE_TYPE="quorum")
    with ClusterRpcProxy(config) as proxy:
        assert proxy.svc.echo("hi") == "hi"
    event_dispatcher(config)("src", "thing", "data")
    got = recorder.wait_for(3)
    assert sorted(kind for kind, _ in got) == ["broad", "pooled", "single"]

    assert queue_type(config, "rpc-svc") == "quorum"
    assert queue_type(config, "evt-src-thing--svc.pooled") == "quorum"
    assert queue_type(config, "evt-src-thing") == "quorum"


def rpc_service(name: str):
    return type(name, (), {"name": name, "echo": rpc(lambda self, value: value)})


def test_a_mapping_opts_in_one_service(start, config) -> None:
    """(A singleton handler's queue is shared by every service handling the
    event: services with different types can't both have one.)"""
    start(rpc_service("fast"), QUEUE_TYPE={"fast": "quorum"})
    start(rpc_service("slow"), QUEUE_TYPE={"fast": "quorum"})
    assert queue_type(config, "rpc-fast") == "quorum"
    assert queue_type(config, "rpc-slow") == "classic"


def test_a_service_whose_queue_has_another_type_does_not_start(
    start, config, container_factory
) -> None:
    """Say a nameko 2.14 instance of the service runs already: its classic
    queue is refused with an error that says what to change."""
    broker = connect(config["AMQP_URI"])
    broker.declare([Queue("rpc-svc")])
    broker.close()
    container = container_factory(
        make_service("svc", Recorder()), {**config, "QUEUE_TYPE": "quorum"}
    )
    with pytest.raises(QueueTypeMismatch) as info:
        container.start()
    assert isinstance(info.value, ConfigurationError)
    message = str(info.value)
    assert "'rpc-svc' exists as a classic queue" in message
    assert "QUEUE_TYPE asks for quorum" in message


def test_an_event_queue_of_another_type_is_refused_too(config, container_factory) -> None:
    broker = connect(config["AMQP_URI"])
    broker.declare([Queue("evt-src-thing--svc.pooled", arguments=QUORUM)])
    broker.close()
    container = container_factory(make_service("svc", Recorder()), config)
    with pytest.raises(
        QueueTypeMismatch, match="exists as a quorum queue, but QUEUE_TYPE asks for classic"
    ):
        container.start()


def test_an_unknown_queue_type_is_a_configuration_error(config, container_factory) -> None:
    container = container_factory(make_service("svc", Recorder()), {**config, "QUEUE_TYPE": "fast"})
    with pytest.raises(ConfigurationError, match="QUEUE_TYPE must be"):
        container.start()
