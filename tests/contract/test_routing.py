"""Exchange routing, mandatory returns and publishing errors.

The topic and headers tables were recorded from RabbitMQ 3.10 with py-amqp.
"""

from __future__ import annotations

import contextlib
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
from tests.contract.conftest import Collector, fence, transient_queue


def consume_all(broker: Broker, queues: list[str]) -> dict[str, Collector]:
    collectors = {name: Collector(ack=True) for name in queues}
    for name, collector in collectors.items():
        broker.consume(name, collector)
    return collectors


def bodies_before_fence(broker: Broker, collectors: dict[str, Collector]) -> dict[str, list]:
    return {name: [d.body for d in fence(broker, name, c)] for name, c in collectors.items()}


def test_the_default_exchange_routes_by_queue_name(broker: Broker) -> None:
    broker.declare([transient_queue("a"), transient_queue("b")])
    collectors = consume_all(broker, ["a", "b"])
    broker.publish("", "a", b"to a", Properties())
    broker.publish("", "b", b"to b", Properties())
    broker.publish("", "nowhere", b"dropped", Properties())
    assert bodies_before_fence(broker, collectors) == {"a": [b"to a"], "b": [b"to b"]}
    assert collectors["a"].deliveries[0].exchange == ""
    assert collectors["a"].deliveries[0].routing_key == "a"


def test_direct_routes_on_the_exact_key(broker: Broker) -> None:
    broker.declare([Exchange("ex", "direct", durable=False)])
    broker.declare([transient_queue(q) for q in ("a", "b", "c")])
    broker.declare([Binding("a", "ex", "k1"), Binding("b", "ex", "k1"), Binding("c", "ex", "k2")])
    collectors = consume_all(broker, ["a", "b", "c"])
    for key in ("k1", "k2", "k1.x", "K1", ""):
        broker.publish("ex", key, key.encode(), Properties())
    assert bodies_before_fence(broker, collectors) == {"a": [b"k1"], "b": [b"k1"], "c": [b"k2"]}


TOPIC_KEYS = ["", "a", "b", "a.b", "a..c", "a.x.c", "a.c", ".", "a.", ".a", "a.b.c.d.c", "x.y.z"]
TOPIC_TABLE = {  # pattern: the keys of TOPIC_KEYS it matches, as RabbitMQ 3.10 routes them
    "*": ["a", "b"],
    "#": TOPIC_KEYS,
    "": [""],
    "a.#": ["a", "a.b", "a..c", "a.x.c", "a.c", "a.", "a.b.c.d.c"],
    "#.b": ["b", "a.b"],
    "a.*.c": ["a..c", "a.x.c"],
    "#.#": TOPIC_KEYS,
    "a.#.c": ["a..c", "a.x.c", "a.c", "a.b.c.d.c"],
    "*.*": ["a.b", "a.c", ".", "a.", ".a"],
    "#.*": [k for k in TOPIC_KEYS if k],
    "a.*": ["a.b", "a.c", "a."],
}


def test_topic_wildcards(broker: Broker) -> None:
    patterns = list(TOPIC_TABLE)
    queues = [f"q{i}" for i in range(len(patterns))]
    broker.declare([Exchange("ex", "topic", durable=False)])
    broker.declare([transient_queue(q) for q in queues])
    broker.declare([Binding(q, "ex", p) for q, p in zip(queues, patterns, strict=True)])
    collectors = consume_all(broker, queues)
    for key in TOPIC_KEYS:
        broker.publish("ex", key, key.encode(), Properties())

    got = bodies_before_fence(broker, collectors)
    for queue, pattern in zip(queues, patterns, strict=True):
        assert got[queue] == [k.encode() for k in TOPIC_TABLE[pattern]], pattern


def test_fanout_ignores_the_routing_key(broker: Broker) -> None:
    broker.declare([Exchange("ex", "fanout", durable=False), transient_queue("a")])
    broker.declare([transient_queue("b"), Binding("a", "ex", "ignored"), Binding("b", "ex")])
    collectors = consume_all(broker, ["a", "b"])
    broker.publish("ex", "any.key", b"m", Properties())
    assert bodies_before_fence(broker, collectors) == {"a": [b"m"], "b": [b"m"]}


HEADER_MESSAGES: list[dict[str, Any]] = [
    {},
    {"a": 1},
    {"a": 2},
    {"a": 1.0},
    {"a": True},
    {"a": "1"},
    {"a": None},
    {"b": 2},
    {"a": 1, "b": 2},
    {"x-foo": "bar"},
    {"a": 1, "x-foo": "baz"},
    {"a": {"n": 1}},
    {"a": [1, 2]},
    {"a": 1, "b": 3},
]
HEADER_TABLE: list[tuple[dict[str, Any], list[int]]] = [  # binding, indexes it matches
    ({"a": 1}, [1, 3, 8, 10, 13]),  # 1 == 1.0, as in Erlang
    ({"x-match": "any", "a": 1, "b": 2}, [1, 3, 7, 8, 10, 13]),
    ({"x-match": "all"}, list(range(len(HEADER_MESSAGES)))),
    ({"x-match": "any"}, []),
    ({"a": None}, [1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13]),  # void: presence only
    ({"a": True}, [4]),  # a boolean is not 1
    ({"a": "1"}, [5]),
    ({"x-foo": "bar"}, list(range(len(HEADER_MESSAGES)))),  # x- keys are not compared
    ({"x-foo": "bar", "x-match": "any"}, []),
    ({"x-foo": "bar", "x-match": "any-with-x"}, [9]),
    ({"x-foo": "baz", "x-match": "all-with-x", "a": 1}, [10]),
    ({"a": 1, "b": 2}, [8]),
    ({"a": {"n": 1}}, [11]),
    ({"a": [1, 2]}, [12]),
]


def test_headers_exchange_matching(broker: Broker) -> None:
    queues = [f"q{i}" for i in range(len(HEADER_TABLE))]
    broker.declare([Exchange("ex", "headers", durable=False)])
    broker.declare([transient_queue(q) for q in queues])
    broker.declare(
        [Binding(q, "ex", "", args) for q, (args, _) in zip(queues, HEADER_TABLE, strict=True)]
    )
    collectors = consume_all(broker, queues)
    for index, headers in enumerate(HEADER_MESSAGES):
        broker.publish("ex", "ignored", str(index).encode(), Properties(headers=headers))

    got = bodies_before_fence(broker, collectors)
    for queue, (arguments, expected) in zip(queues, HEADER_TABLE, strict=True):
        assert got[queue] == [str(i).encode() for i in expected], arguments


def test_headers_binding_with_an_invalid_x_match_is_refused(broker: Broker) -> None:
    broker.declare([Exchange("ex", "headers", durable=False), transient_queue("q")])
    with pytest.raises(PreconditionFailed):
        broker.declare([Binding("q", "ex", "", {"x-match": "some"})])


def test_a_queue_matched_by_several_bindings_gets_one_copy(broker: Broker) -> None:
    broker.declare([Exchange("ex", "topic", durable=False), transient_queue("q")])
    broker.declare([Binding("q", "ex", "a.*"), Binding("q", "ex", "#"), Binding("q", "ex", "a.b")])
    collectors = consume_all(broker, ["q"])
    broker.publish("ex", "a.b", b"once", Properties())
    assert bodies_before_fence(broker, collectors) == {"q": [b"once"]}


def test_publishing_to_a_missing_exchange_fails_then_the_connection_works(
    broker: Broker,
) -> None:
    broker.declare([transient_queue("q")])
    with pytest.raises(NotFound) as info:
        broker.publish("missing", "q", b"lost", Properties())
    assert info.value.reply_code == 404

    collector = Collector(ack=True)
    broker.consume("q", collector)
    broker.publish("", "q", b"delivered", Properties())
    assert collector.wait_for(1)[0].body == b"delivered"


def test_an_unconfirmed_publish_to_a_missing_exchange_does_not_break_the_connection(
    broker: Broker,
) -> None:
    """Whether it raises is up to the implementation (the broker only answers
    later); what follows on the same connection must work."""
    broker.declare([transient_queue("q")])
    with contextlib.suppress(NotFound):
        broker.publish("missing", "q", b"lost", Properties(), confirm=False)
    broker.publish("", "q", b"confirmed", Properties())
    collector = Collector(ack=True)
    broker.consume("q", collector)
    assert collector.wait_for(1)[0].body == b"confirmed"


@pytest.mark.parametrize("exchange", ["", "ex"], ids=["default-exchange", "topic-exchange"])
def test_mandatory_unroutable_raises(broker: Broker, exchange: str) -> None:
    broker.declare([Exchange("ex", "topic", durable=False), transient_queue("q")])
    broker.declare([Binding("q", "ex", "bound")])
    with pytest.raises(Unroutable) as info:
        broker.publish(exchange, "unbound", b"m", Properties(), mandatory=True)
    assert (info.value.exchange, info.value.routing_key) == (exchange, "unbound")


def test_mandatory_routed_and_unroutable_without_mandatory_succeed(broker: Broker) -> None:
    broker.declare([Exchange("ex", "direct", durable=False), transient_queue("q")])
    broker.declare([Binding("q", "ex", "bound")])
    broker.publish("ex", "unbound", b"dropped", Properties())
    broker.publish("ex", "unbound", b"dropped", Properties(), mandatory=True, confirm=False)
    broker.publish("ex", "bound", b"kept", Properties(), mandatory=True)
    collectors = consume_all(broker, ["q"])
    assert bodies_before_fence(broker, collectors) == {"q": [b"kept"]}


def test_publishing_to_another_connections_exclusive_queue_is_allowed(open_broker) -> None:
    owner, other = open_broker(), open_broker()
    owner.declare([Queue("private", exclusive=True, durable=False)])
    other.publish("", "private", b"hello", Properties(), mandatory=True)
    collector = Collector(ack=True)
    owner.consume("private", collector)
    assert collector.wait_for(1)[0].body == b"hello"
    with pytest.raises(ChannelError):
        other.consume("private", Collector())
