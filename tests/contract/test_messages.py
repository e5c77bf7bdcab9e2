"""What a delivery carries: bodies, properties and headers exactly as
published; per-queue and per-message TTL; queue length limits."""

from __future__ import annotations

import os
from typing import Any

import pytest

from nameko._broker.base import (
    MAX_HEADER_NESTING,
    Binding,
    Broker,
    Exchange,
    MessageTooLarge,
    Properties,
    PublishNacked,
)
from tests.contract.conftest import Collector, fence, transient_queue


def assert_identical(got: Any, expected: Any, path: str = "headers") -> None:
    """Equal *and* of the same types all the way down (1, 1.0 and True are ==)."""
    assert type(got) is type(expected), f"{path}: {type(got).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            assert_identical(got[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for index, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_identical(g, e, f"{path}[{index}]")
    else:
        assert got == expected, path


def round_trip(broker: Broker, body: bytes, properties: Properties) -> Any:
    broker.declare([transient_queue("q")])
    collector = Collector(ack=True)
    broker.consume("q", collector)
    broker.publish("", "q", body, properties)
    return collector.wait_for(1)[0]


def test_a_one_mebibyte_body_arrives_intact(broker: Broker) -> None:
    body = os.urandom(1 << 20)
    assert round_trip(broker, body, Properties()).body == body


@pytest.mark.parametrize("confirm", [True, False])
def test_a_body_over_max_message_size_is_refused_before_sending(open_broker, confirm) -> None:
    broker = open_broker(max_message_size=1000)
    assert broker.max_message_size == 1000
    broker.declare([transient_queue("q")])
    collector = Collector(ack=True)
    broker.consume("q", collector)
    with pytest.raises(MessageTooLarge, match="1001 bytes"):
        broker.publish("", "q", b"x" * 1001, Properties(), confirm=confirm)
    with pytest.raises(MessageTooLarge):
        broker.publish_async("", "q", b"x" * 1001, Properties())
    broker.publish("", "q", b"y" * 1000, Properties())  # the limit itself is fine
    assert fence(broker, "q", collector) == collector.deliveries
    assert collector.bodies == [b"y" * 1000]  # nothing else was sent


def test_binary_bodies_arrive_intact(broker: Broker) -> None:
    bodies = [b"", bytes(range(256)), b"\xff\xfe\x00\x80", b"\x00" * 1000, "snow ☃".encode()]
    broker.declare([transient_queue("q")])
    collector = Collector(ack=True)
    broker.consume("q", collector)
    for body in bodies:
        broker.publish("", "q", body, Properties())
    got = collector.wait_for(len(bodies))
    assert [d.body for d in got] == bodies
    assert all(type(d.body) is bytes for d in got)


def test_properties_round_trip(broker: Broker) -> None:
    properties = Properties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"h": "v"},
        delivery_mode=2,
        priority=5,
        correlation_id="corr-1",
        reply_to="reply-queue",
        expiration="60000",
        message_id="msg-1",
        timestamp=1_700_000_000,
        type="kind",
        app_id="contract-tests",
    )
    delivery = round_trip(broker, b"{}", properties)
    assert delivery.properties == properties
    assert (delivery.exchange, delivery.routing_key, delivery.redelivered) == ("", "q", False)


def test_unset_properties_stay_unset(broker: Broker) -> None:
    assert round_trip(broker, b"x", Properties()).properties == Properties()


def test_unicode_headers_round_trip(broker: Broker) -> None:
    headers = {"ключ": "значение", "emoji 🎉": "✓ snow ☃", "日本": "語", "empty": ""}
    assert_identical(
        round_trip(broker, b"x", Properties(headers=headers)).properties.headers, headers
    )


NESTED_HEADERS: dict[str, Any] = {
    "text": "plain",
    "long": "x" * 70_000,
    "int": 42,
    "negative": -7,
    "zero": 0,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "true": True,
    "false": False,
    "none": None,
    "float": 0.1,  # needs a double on the wire, not a 32-bit float
    "float_big": 1e300,
    "float_whole": 3.0,
    "bytes": b"\x00\xff\xfe not utf-8",
    "ascii_bytes": b"abc",  # stays bytes, does not become str
    "list": [1, "two", 3.0, None, True, b"\x01", [4, [5]], {"k": "v"}],
    "empty_list": [],
    "table": {"nested": {"deeper": {"deepest": [1, 2, 3]}}, "flag": False, "n": None},
    "empty_table": {},
}


def test_nested_header_tables_round_trip_with_their_types(broker: Broker) -> None:
    delivery = round_trip(broker, b"x", Properties(headers=NESTED_HEADERS))
    assert_identical(delivery.properties.headers, NESTED_HEADERS)


def _nested(levels: int, array_at: int = 0) -> dict[str, Any]:
    """``levels`` tables (the header table included); level ``array_at`` is a list."""
    headers: dict[str, Any] = {}
    inner: Any = headers
    for level in range(2, levels + 1):
        child: Any = [] if level == array_at else {}
        if isinstance(inner, list):
            inner.append(child)
        else:
            inner["k"] = child
        inner = child
    return headers


@pytest.mark.parametrize("array_at", [0, 5], ids=["tables", "with-an-array"])
def test_headers_nested_as_deep_as_the_cap_round_trip(broker: Broker, array_at: int) -> None:
    headers = _nested(MAX_HEADER_NESTING, array_at)
    delivery = round_trip(broker, b"x", Properties(headers=headers))
    assert delivery.properties.headers == headers


@pytest.mark.parametrize("levels", [MAX_HEADER_NESTING + 1, 1000])
def test_headers_nested_deeper_than_the_cap_are_refused_before_sending(
    broker: Broker, levels: int
) -> None:
    broker.declare([transient_queue("q")])
    for headers in (_nested(levels), _nested(levels, array_at=levels)):
        with pytest.raises(ValueError, match=f"nested deeper than {MAX_HEADER_NESTING} levels"):
            broker.publish("", "q", b"deep", Properties(headers=headers))
    collector = Collector(ack=True)
    broker.consume("q", collector)
    assert fence(broker, "q", collector) == []


def test_mutating_headers_after_publish_does_not_change_the_message(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    headers: dict[str, Any] = {"list": [1], "table": {"k": "v"}}
    broker.publish("", "q", b"x", Properties(headers=headers))
    headers["list"].append(2)
    headers["table"]["k"] = "changed"
    headers["added"] = True

    collector = Collector(ack=True)
    broker.consume("q", collector)
    assert collector.wait_for(1)[0].properties.headers == {"list": [1], "table": {"k": "v"}}


def test_each_delivery_has_its_own_headers(broker: Broker) -> None:
    broker.declare([Exchange("ex", "fanout", durable=False), transient_queue("a")])
    broker.declare([transient_queue("b"), Binding("a", "ex"), Binding("b", "ex")])
    first, second = Collector(ack=True), Collector(ack=True)
    broker.consume("a", first)
    broker.publish("ex", "", b"x", Properties(headers={"list": [1]}))
    first_headers = first.wait_for(1)[0].properties.headers
    first_headers["list"].append("mutated by a consumer")
    broker.consume("b", second)
    assert second.wait_for(1)[0].properties.headers == {"list": [1]}


def test_a_message_with_ttl_zero_is_dropped_when_no_consumer_can_take_it(
    broker: Broker,
) -> None:
    broker.declare([transient_queue("q"), transient_queue("ttl0", **{"x-message-ttl": 0})])
    broker.publish("", "q", b"expired", Properties(expiration="0"))
    broker.publish("", "q", b"kept", Properties())
    broker.publish("", "ttl0", b"expired", Properties())

    collectors = {"q": Collector(ack=True), "ttl0": Collector(ack=True)}
    for queue, collector in collectors.items():
        broker.consume(queue, collector)
    assert [d.body for d in fence(broker, "q", collectors["q"])] == [b"kept"]
    assert fence(broker, "ttl0", collectors["ttl0"]) == []


def test_a_message_with_ttl_zero_reaches_a_consumer_with_room(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    collector = Collector()
    broker.consume("q", collector, prefetch=1)
    broker.publish("", "q", b"taken at once", Properties(expiration="0"))
    first = collector.wait_for(1)[0]
    broker.publish("", "q", b"consumer full: dropped", Properties(expiration="0"))
    broker.publish("", "q", b"waits", Properties())
    first.ack()
    collector.wait_for(2)[1].ack()
    assert [d.body for d in fence(broker, "q", collector)] == [b"taken at once", b"waits"]


def test_max_length_drops_from_the_head(broker: Broker) -> None:
    broker.declare([transient_queue("q", **{"x-max-length": 2})])
    for n in range(4):
        broker.publish("", "q", str(n).encode(), Properties())
    collector = Collector(ack=True)
    broker.consume("q", collector)
    assert [d.body for d in fence(broker, "q", collector)] == [b"2", b"3"]


def test_a_full_reject_publish_queue_nacks(broker: Broker) -> None:
    broker.declare([transient_queue("q", **{"x-max-length": 1, "x-overflow": "reject-publish"})])
    broker.publish("", "q", b"accepted", Properties())
    with pytest.raises(PublishNacked):
        broker.publish("", "q", b"refused", Properties())
    broker.publish("", "q", b"refused quietly", Properties(), confirm=False)

    collector = Collector(ack=True)
    broker.consume("q", collector)
    assert collector.wait_for(1)[0].body == b"accepted"
    assert [d.body for d in fence(broker, "q", collector)] == [b"accepted"]
