"""Details of the in-memory broker that the shared contract (tests/contract) does
not pin: its pure routing rules, header-table copying, and server naming."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nameko._broker import connect, memory
from nameko._broker._memory_routing import copy_headers, headers_match, topic_matches
from nameko._broker.base import (
    Binding,
    Broker,
    BrokerError,
    Delivery,
    Exchange,
    NotFound,
    PreconditionFailed,
    Properties,
    PublishNacked,
    Queue,
)
from nameko._concurrency import OneShot


@pytest.fixture
def uri() -> Iterator[str]:
    name = f"memory://core-{secrets.token_hex(6)}"
    yield name
    memory.reset(name)


@pytest.fixture
def broker(uri: str) -> Iterator[Broker]:
    with connect(uri) as broker:
        yield broker


# -- topic matching against a plain recursive definition


def reference_topic_match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return reference_topic_match(rest, words) or (
            bool(words) and reference_topic_match(pattern, words[1:])
        )
    return bool(words) and head in ("*", words[0]) and reference_topic_match(rest, words[1:])


def split(key: str) -> list[str]:
    return key.split(".") if key else []


topic_words = st.lists(st.sampled_from(["a", "b", ""]), max_size=6).map(".".join)
topic_patterns = st.lists(st.sampled_from(["a", "b", "*", "#", ""]), max_size=6).map(".".join)


@given(pattern=topic_patterns, key=topic_words)
def test_topic_matching_agrees_with_the_recursive_definition(pattern: str, key: str) -> None:
    assert topic_matches(pattern, key) == reference_topic_match(split(pattern), split(key))


def test_topic_matching_stays_fast_on_many_hashes() -> None:
    assert not topic_matches("#." * 30 + "z", ".".join(["a"] * 40))


def test_header_strings_and_bytes_match_like_erlang_binaries() -> None:
    assert headers_match({"k": "v"}, {"k": b"v"})
    assert not headers_match({"k": 1}, {"k": True})
    assert headers_match({"k": 2}, {"k": 2.0})


# -- header tables


def test_copy_headers_is_deep_and_shaped_like_the_wire() -> None:
    original = {"t": (1, [2]), "ba": bytearray(b"x"), "d": {"l": [1]}}
    copied = copy_headers(original)
    assert copied == {"t": [1, [2]], "ba": b"x", "d": {"l": [1]}}
    original["d"]["l"].append(2)  # type: ignore[index]
    assert copied["d"] == {"l": [1]}


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"set": {1}}, TypeError),
        ({"object": object()}, TypeError),
        ({1: "non-str key"}, TypeError),
        ({"huge": 2**63}, ValueError),
        ({"k" * 256: "key too long"}, ValueError),
    ],
)
def test_copy_headers_refuses_what_amqp_cannot_carry(headers: dict, error: type) -> None:
    with pytest.raises(error):
        copy_headers(headers)


# -- servers and connections


def test_memory_uris_name_servers(uri: str) -> None:
    other = uri + "-other"
    try:
        with connect(uri) as a, connect(uri + "/") as same, connect(other) as elsewhere:
            a.declare([Queue("q", durable=False)])
            same.publish("", "q", b"m", Properties(), mandatory=True)
            elsewhere.declare([Exchange("probe", "fanout", durable=False)])
            with pytest.raises(NotFound):
                elsewhere.declare([Binding("q", "probe")])
    finally:
        memory.reset(other)


def test_reset_forgets_a_server(uri: str) -> None:
    with connect(uri) as broker:
        broker.declare([Queue("q", durable=False)])
    memory.reset(uri)
    with connect(uri) as broker:
        broker.declare([Exchange("probe", "fanout", durable=False)])
        with pytest.raises(NotFound):
            broker.declare([Binding("q", "probe")])


def test_a_body_must_be_bytes(broker: Broker) -> None:
    broker.declare([Queue("q", durable=False)])
    with pytest.raises(TypeError):
        broker.publish("", "q", "text", Properties())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        broker.publish("", "q", 5, Properties())  # type: ignore[arg-type]


def test_an_invalid_expiration_is_refused(broker: Broker) -> None:
    broker.declare([Queue("q", durable=False)])
    with pytest.raises(PreconditionFailed):
        broker.publish("", "q", b"m", Properties(expiration="-1"))


def test_a_nacked_publish_still_reaches_the_queues_with_room(broker: Broker) -> None:
    full = Queue(
        "full", durable=False, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )
    broker.declare([Exchange("ex", "fanout", durable=False), full, Queue("roomy", durable=False)])
    broker.declare([Binding("full", "ex"), Binding("roomy", "ex")])
    with pytest.raises(PublishNacked):
        broker.publish("ex", "", b"m", Properties())
    got: OneShot[Delivery] = OneShot()
    broker.consume("roomy", got.send)
    assert got.get(5).body == b"m"


def test_a_confirmed_publish_on_another_connection_from_a_callback_works(uri: str) -> None:
    with connect(uri) as consuming, connect(uri) as publishing:
        consuming.declare([Queue("in", durable=False), Queue("out", durable=False)])
        outcome: OneShot[BrokerError | None] = OneShot()

        def on_message(delivery: Delivery) -> None:
            try:
                publishing.publish("", "out", b"confirmed", Properties())
            except BrokerError as exc:
                outcome.send(exc)
            else:
                outcome.send(None)

        consuming.consume("in", on_message, no_ack=True)
        consuming.publish("", "in", b"go", Properties())
        assert outcome.get(5) is None
