"""Declaring exchanges, queues and bindings; deleting queues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from nameko._broker.base import (
    Binding,
    Broker,
    ChannelError,
    Exchange,
    NotFound,
    PreconditionFailed,
    Properties,
    Queue,
    Unroutable,
)
from tests.contract.conftest import Collector, fence, queue_exists, transient_queue

ACCESS_REFUSED = 403


def test_declare_is_idempotent(broker: Broker) -> None:
    topology = [
        Exchange("ex", "direct", durable=False),
        transient_queue("q"),
        Binding("q", "ex", "key"),
    ]
    broker.declare(topology)
    broker.declare(topology)

    collector = Collector(ack=True)
    broker.consume("q", collector)
    broker.publish("ex", "key", b"once", Properties())
    assert [d.body for d in fence(broker, "q", collector)] == [b"once"]


@pytest.mark.parametrize(
    "name",
    ["问候服务", "ünïcode*name", "a" * 255, "é" * 127],
    ids=["chinese", "latin-and-star", "255-ascii", "254-bytes"],
)
def test_any_utf8_name_up_to_255_bytes_works(broker: Broker, name: str) -> None:
    """As on RabbitMQ (and nameko 2.14 through py-amqp): stricter AMQP name
    grammars, such as pamqp's ASCII-only one, are not enforced."""
    key = name[:100]
    broker.declare([Exchange(name, "direct", durable=False), transient_queue(name)])
    broker.declare([Binding(name, name, key)])
    collector = Collector(ack=True)
    broker.consume(name, collector)
    broker.publish(name, key, b"named", Properties(), mandatory=True)
    assert [d.body for d in fence(broker, name, collector)] == [b"named"]
    broker.delete_queue(name)
    assert not queue_exists(broker, name)


@pytest.mark.parametrize(
    "make",
    [
        lambda name: Queue(name),
        lambda name: Exchange(name),
        lambda name: Binding(name, "ex"),
        lambda name: Binding("q", "ex", routing_key=name),
    ],
    ids=["queue", "exchange", "binding-queue", "routing-key"],
)
def test_names_over_255_bytes_are_refused_at_once(make: Callable[[str], Any]) -> None:
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        make("é" * 128)  # 256 bytes


@pytest.mark.parametrize(
    "changed",
    [{"type": "fanout"}, {"durable": True}, {"auto_delete": True}],
    ids=["type", "durable", "auto_delete"],
)
def test_redeclaring_an_exchange_differently_fails(broker: Broker, changed: dict) -> None:
    original = Exchange("ex", "direct", durable=False, auto_delete=False)
    broker.declare([original])
    with pytest.raises(PreconditionFailed) as info:
        broker.declare([replace(original, **changed)])
    assert info.value.reply_code == 406


def test_exchange_arguments_other_than_alternate_exchange_are_not_compared(broker: Broker) -> None:
    broker.declare([Exchange("ex", "direct", durable=False)])
    broker.declare([Exchange("ex", "direct", durable=False, arguments={"custom": 1})])
    with pytest.raises(PreconditionFailed):
        broker.declare(
            [Exchange("ex", "direct", durable=False, arguments={"alternate-exchange": "ae"})]
        )


@pytest.mark.parametrize(
    "changed",
    [
        {"durable": True},
        {"auto_delete": True},
        {"arguments": {"x-expires": 60_001}},
        {"arguments": {}},  # x-expires dropped
        {"arguments": {"x-expires": 60_000, "x-message-ttl": 5_000}},
    ],
    ids=["durable", "auto_delete", "x-expires-changed", "x-expires-dropped", "ttl-added"],
)
def test_redeclaring_a_queue_differently_fails(broker: Broker, changed: dict) -> None:
    original = Queue("q", durable=False, arguments={"x-expires": 60_000})
    broker.declare([original])
    with pytest.raises(PreconditionFailed) as info:
        broker.declare([replace(original, **changed)])
    assert info.value.reply_code == 406


def test_queue_arguments_the_broker_does_not_know_are_not_compared(broker: Broker) -> None:
    broker.declare([transient_queue("q", custom="a")])
    broker.declare([transient_queue("q", custom="b")])
    broker.declare([transient_queue("q")])


@pytest.mark.parametrize(
    "arguments",
    [{"x-expires": 0}, {"x-expires": "soon"}, {"x-message-ttl": -1}, {"x-max-length": -1}],
    ids=["expires-zero", "expires-str", "ttl-negative", "max-length-negative"],
)
def test_invalid_queue_arguments_are_refused(broker: Broker, arguments: dict) -> None:
    with pytest.raises(PreconditionFailed):
        broker.declare([transient_queue("q", **arguments)])
    assert not queue_exists(broker, "q")


def test_binding_to_a_missing_exchange_fails(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    with pytest.raises(NotFound) as info:
        broker.declare([Binding("q", "missing", "key")])
    assert info.value.reply_code == 404


def test_binding_a_missing_queue_fails(broker: Broker) -> None:
    broker.declare([Exchange("ex", durable=False)])
    with pytest.raises(NotFound):
        broker.declare([Binding("missing", "ex", "key")])


def test_declaring_the_default_exchange_or_binding_to_it_does_nothing(broker: Broker) -> None:
    """RabbitMQ refuses both (403); the seam skips them, so that topologies can
    name the default exchange like any other."""
    broker.declare([transient_queue("q")])
    broker.declare([Exchange("", "direct"), Binding("q", "", "other-key")])
    with pytest.raises(Unroutable):
        broker.publish("", "other-key", b"not routed", Properties(), mandatory=True)
    broker.publish("", "q", b"routed by queue name", Properties(), mandatory=True)


@pytest.mark.parametrize(
    "entity", [Exchange("amq.custom", "direct"), Queue("amq.custom")], ids=["exchange", "queue"]
)
def test_the_amq_prefix_is_reserved(broker: Broker, entity: Any) -> None:
    with pytest.raises(ChannelError) as info:
        broker.declare([entity])
    assert info.value.reply_code == ACCESS_REFUSED


@pytest.mark.parametrize(
    ("exchange", "kind", "routing_key", "headers"),
    [
        ("amq.direct", "direct", "key", {}),
        ("amq.fanout", "fanout", "", {}),
        ("amq.topic", "topic", "a.*", {}),
        ("amq.headers", "headers", "", {"h": 1}),
        ("amq.match", "headers", "", {"h": 1}),
    ],
)
def test_the_predeclared_exchanges_exist(
    broker: Broker, exchange: str, kind: str, routing_key: str, headers: dict
) -> None:
    broker.declare(
        [
            Exchange(exchange, kind),
            transient_queue("q"),
            Binding("q", exchange, routing_key, headers),
        ]
    )
    collector = Collector(ack=True)
    broker.consume("q", collector)
    broker.publish(
        exchange, "a.key" if kind == "topic" else "key", b"m", Properties(headers=headers)
    )
    assert collector.wait_for(1)[0].exchange == exchange


def test_channel_errors_leave_the_connection_usable(broker: Broker) -> None:
    broker.declare([Exchange("ex", "direct", durable=False), transient_queue("q")])
    with pytest.raises(PreconditionFailed):
        broker.declare([Exchange("ex", "topic", durable=False)])
    with pytest.raises(NotFound):
        broker.declare([Binding("q", "missing")])
    with pytest.raises(NotFound):
        broker.consume("missing", Collector())

    broker.declare([Binding("q", "ex", "key")])
    collector = Collector(ack=True)
    broker.consume("q", collector)
    broker.publish("ex", "key", b"still fine", Properties())
    assert collector.wait_for(1)[0].body == b"still fine"


def test_deleting_a_missing_queue_is_not_an_error(broker: Broker) -> None:
    broker.delete_queue("missing")


def test_deleting_a_queue_drops_its_messages_and_bindings(broker: Broker) -> None:
    broker.declare([Exchange("ex", "direct", durable=False), transient_queue("q")])
    broker.declare([Binding("q", "ex", "key")])
    broker.publish("ex", "key", b"old", Properties())

    broker.delete_queue("q")
    assert not queue_exists(broker, "q")
    broker.declare([transient_queue("q")])
    with pytest.raises(Unroutable):
        broker.publish("ex", "key", b"new", Properties(), mandatory=True)
    collector = Collector(ack=True)
    broker.consume("q", collector)
    assert fence(broker, "q", collector) == []


def test_connections_to_one_broker_share_its_entities(
    open_broker: Callable[..., Broker],
) -> None:
    first, second = open_broker(), open_broker()
    first.declare([Exchange("ex", "fanout", durable=False), transient_queue("q")])
    second.declare([Binding("q", "ex")])
    collector = Collector(ack=True)
    first.consume("q", collector)
    second.publish("ex", "", b"across", Properties())
    assert collector.wait_for(1)[0].body == b"across"


def test_an_auto_delete_exchange_goes_with_its_last_binding(broker: Broker) -> None:
    broker.declare([Exchange("ex", "fanout", durable=False, auto_delete=True)])
    broker.declare([transient_queue("a"), transient_queue("b")])
    broker.declare([Binding("a", "ex"), Binding("b", "ex")])

    broker.delete_queue("a")
    broker.publish("ex", "", b"still bound", Properties())  # exchange still there
    broker.delete_queue("b")
    with pytest.raises(NotFound):
        broker.publish("ex", "", b"gone", Properties())


def test_an_auto_delete_exchange_never_bound_stays(broker: Broker) -> None:
    broker.declare([Exchange("ex", "fanout", durable=False, auto_delete=True)])
    broker.publish("ex", "", b"nobody listens", Properties())
    broker.declare([Exchange("ex", "fanout", durable=False, auto_delete=True)])
