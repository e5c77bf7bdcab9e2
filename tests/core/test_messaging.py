"""``@consume``, the `Publisher` dependency and `nameko.amqp.publish` on the
in-memory broker."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, Properties, Queue
from nameko._messaging.entities import entities_of, queue_entities
from nameko.amqp import UndeliverableMessage, get_connection, get_producer
from nameko.amqp.publish import Publisher as CorePublisher
from nameko.messaging import Publisher, consume, decode_from_headers, encode_to_headers
from nameko.testing.services import dummy, entrypoint_hook, entrypoint_waiter
from tests.core.helpers import Recorder, WorkerCtx

# -- kombu look-alikes: user code written against kombu's Exchange/Queue ------------


@dataclass
class KombuExchange:
    name: str
    type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    arguments: Any = None
    no_declare: bool = False


@dataclass
class KombuBinding:
    exchange: Any
    routing_key: str = ""
    arguments: Any = None


@dataclass
class KombuQueue:
    name: str
    exchange: Any = None
    routing_key: str = ""
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    queue_arguments: Any = None
    binding_arguments: Any = None
    bindings: list = field(default_factory=list)
    expires: float | None = None
    message_ttl: float | None = None
    max_length: int | None = None


# -- fixtures and helpers --------------------------------------------------------------


@pytest.fixture
def uri(config):
    return config["AMQP_URI"]


@pytest.fixture
def spy(uri):
    """``spy(exchange, key)``: a Recorder of the deliveries routed there."""
    with connect(uri) as broker:

        def spy(exchange: Exchange, routing_key: str = "#") -> Recorder:
            seen = Recorder()
            name = f"spy-{exchange.name}-{routing_key}"
            broker.consume(
                name,
                lambda delivery: (delivery.ack(), seen.add(delivery)),
                topology=[exchange, Queue(name), Binding(name, exchange.name, routing_key)],
            )
            return seen

        yield spy


def producer_service(**publisher_options):
    class Producer:
        name = "producer"
        publish = Publisher(**publisher_options)
        ctx = WorkerCtx()

        @dummy
        def send(self, msg, tag=None, **kwargs):
            if tag is not None:
                self.ctx.data["tag"] = tag  # after injection: still sent
            self.publish(msg, **kwargs)

    return Producer


def send(container, msg, context_data=None, **kwargs):
    with entrypoint_hook(container, "send", context_data=context_data) as hook:
        hook(msg, **kwargs)


def consumer_service(queue, seen, **options):
    class Worker:
        name = "worker"
        ctx = WorkerCtx()

        @consume(queue, **options)
        def handle(self, body):
            seen.add((body, self.ctx.data, self.ctx.parent_call_stack))

    return Worker


WORK = Exchange("work", type="direct")

# -- @consume + Publisher ----------------------------------------------------------------


def test_round_trip_with_shimeji_entities(start):
    seen = Recorder()
    start(consumer_service(Queue("jobs"), seen, exchange=WORK, routing_key="jobs"))
    producer = start(producer_service(exchange=WORK))

    send(producer, {"job": 1}, context_data={"user_id": 9}, routing_key="jobs", tag="late")

    ((body, data, parents),) = seen.wait_for(1)
    assert body == {"job": 1}
    assert data == {"user_id": 9, "tag": "late"}  # headers computed at publish time
    (parent,) = parents
    assert parent.startswith("producer.send.")


def test_round_trip_with_kombu_style_declarations(start):
    seen = Recorder()
    exchange = KombuExchange("topical", type="topic")
    start(consumer_service(KombuQueue("q", exchange=exchange, routing_key="a.*"), seen))
    producer = start(producer_service(exchange=exchange))

    send(producer, "for a.b", routing_key="a.b")
    send(producer, "for nobody", routing_key="b.a")
    send(producer, "for a.c", routing_key="a.c")

    assert [body for body, _, _ in seen.wait_for(2)] == ["for a.b", "for a.c"]


def test_default_exchange_and_queue_by_name(start):
    seen = Recorder()
    start(consumer_service("plain", seen))
    producer = start(producer_service())
    send(producer, "hi", routing_key="plain")
    assert [body for body, _, _ in seen.wait_for(1)] == ["hi"]


def test_deprecated_queue_argument_gives_exchange_and_declaration(start):
    seen = Recorder()
    queue = KombuQueue("legacy", exchange=KombuExchange("old"), routing_key="k")
    with pytest.warns(DeprecationWarning, match="queue"):
        # declares the queue, so nothing is lost before a consumer starts
        producer = start(producer_service(queue=queue))
    send(producer, "kept", routing_key="k")
    start(consumer_service(queue, seen))
    assert [body for body, _, _ in seen.wait_for(1)] == ["kept"]


def test_publisher_of_a_killed_container_does_not_reconnect(start):
    producer = start(producer_service())
    dependency = next(d for d in producer.dependencies if d.attr_name == "publish")
    producer.kill()
    with pytest.raises(RuntimeError, match="stopped"):
        dependency.publisher.publish("late", routing_key="q")


def test_undecodable_message_is_rejected_and_the_service_lives_on(start, uri):
    seen = Recorder()
    worker = start(consumer_service("jobs", seen), max_workers=1)
    with connect(uri) as broker:
        pickled = Properties(content_type="application/x-python-serialize")
        broker.publish("", "jobs", b"\x80\x04K\x01.", pickled)  # json-only ACCEPT
        broker.publish("", "jobs", b"{not json", Properties(content_type="application/json"))
        with entrypoint_waiter(worker, "handle"):
            broker.publish("", "jobs", b'"good"', Properties(content_type="application/json"))
    assert [body for body, _, _ in seen.items] == ["good"]


def test_consumer_accept_option(start, uri):
    seen = Recorder()
    start(consumer_service("jobs", seen, accept=["json", "pickle"]))
    producer = start(producer_service())
    send(producer, {1, 2}, routing_key="jobs", serializer="pickle")
    assert [body for body, _, _ in seen.wait_for(1)] == [{1, 2}]


@pytest.mark.parametrize("compression", ["zlib", "bzip2", "lzma"])
def test_compressed_messages_are_decompressed(start, compression):
    seen = Recorder()
    start(consumer_service("jobs", seen))
    producer = start(producer_service())
    send(producer, "x" * 1000, routing_key="jobs", compression=compression)
    ((body, _, _),) = seen.wait_for(1)
    assert body == "x" * 1000


def test_unknown_consumer_option_is_an_error():
    with pytest.raises(TypeError):
        consume("q", prefetch=3)(lambda self, body: None)


# -- the core publisher ---------------------------------------------------------------


def test_core_publisher_defaults_and_header_merging(uri, spy):
    seen = spy(WORK, "k")
    publisher = CorePublisher(uri, exchange=WORK, routing_key="k", headers={"a": 1, "b": 1})
    publisher.publish({"n": 1}, headers={"b": 2, "c": 2}, extra_headers={"c": 3})

    (delivery,) = seen.wait_for(1)
    props = delivery.properties
    assert json.loads(delivery.body) == {"n": 1}
    assert props.headers == {"a": 1, "b": 2, "c": 3}
    assert (props.delivery_mode, props.priority, props.expiration) == (2, 0, None)
    assert props.content_type == "application/json"


def test_core_publisher_per_call_options(uri, spy):
    seen = spy(WORK, "k")
    publisher = CorePublisher(uri, exchange="work", priority=3)
    publisher.publish(
        "x",
        routing_key="k",
        delivery_mode="transient",
        expiration=1.5,
        correlation_id="c-1",
        reply_to="r",
        serializer="yaml",
        declare=[WORK],
    )
    publisher.publish(b"raw", routing_key="k", content_type="application/octet-stream")

    first, second = seen.wait_for(2)
    props = first.properties
    assert (props.delivery_mode, props.priority, props.expiration) == (1, 3, "1500")
    assert (props.correlation_id, props.reply_to) == ("c-1", "r")
    assert props.content_type == "application/x-yaml"
    assert second.body == b"raw"
    assert second.properties.content_type == "application/octet-stream"


def test_core_publisher_declares_what_it_is_told(uri, spy):
    queue = KombuQueue("declared", exchange=KombuExchange("fresh"), routing_key="k")
    CorePublisher(uri, declare=[queue]).publish("kept", exchange="fresh", routing_key="k")
    seen = Recorder()
    with connect(uri) as broker:
        broker.consume("declared", lambda d: (d.ack(), seen.add(d.body)))
        assert seen.wait_for(1) == [b'"kept"']


def test_core_publisher_unroutable_mandatory_message(uri):
    publisher = CorePublisher(uri, declare=[WORK])
    with pytest.raises(UndeliverableMessage):
        publisher.publish("x", exchange=WORK, routing_key="nowhere", mandatory=True)
    publisher.publish("x", exchange=WORK, routing_key="nowhere")  # not mandatory: dropped
    with pytest.warns(UserWarning, match="confirms not enabled"):
        publisher.publish("x", exchange=WORK, mandatory=True, use_confirms=False)


def test_core_publisher_rejects_unknown_arguments(uri):
    with pytest.raises(TypeError, match="colour"):
        CorePublisher(uri).publish("x", routing_key="q", colour="red")


def test_core_publisher_does_not_share_transport_options(uri):
    publisher = CorePublisher(uri)
    publisher.transport_options["confirm_publish"] = False
    assert "confirm_publish" not in CorePublisher.transport_options


def test_pooled_connections_are_reused(uri):
    with get_connection(uri) as first:
        with get_producer(uri) as second:  # the first is in use
            assert second is not first
    with get_producer(uri) as again:
        assert again in (first, second)
        assert again.is_connected
    first.close()
    with get_connection(uri) as fresh:
        assert fresh is not first and fresh.is_connected


def test_idle_pooled_connections_can_be_closed(uri):
    from nameko._messaging.pool import close_idle

    with get_connection(uri) as idle:
        pass
    close_idle("memory://somewhere-else")  # other brokers' connections only
    assert idle.is_connected
    close_idle(uri)
    assert not idle.is_connected
    with get_connection(uri) as fresh:
        assert fresh is not idle and fresh.is_connected


# -- declarations ---------------------------------------------------------------------


def test_kombu_queue_declarations_are_translated():
    queue = KombuQueue(
        "q",
        exchange=KombuExchange("x", type="topic", auto_delete=True, arguments={"alt": 1}),
        routing_key="a.#",
        exclusive=True,
        auto_delete=True,
        queue_arguments={"x-max-length": 5, "x-dead-letter-exchange": "dlx"},
        binding_arguments={"b": 1},
        bindings=[KombuBinding(KombuExchange("y", no_declare=True), "k")],
        expires=1.5,
        message_ttl=2,
    )
    assert queue_entities(queue) == [
        Exchange("x", type="topic", durable=True, auto_delete=True, arguments={"alt": 1}),
        Queue(
            "q",
            durable=True,
            exclusive=True,
            auto_delete=True,
            arguments={
                "x-max-length": 5,
                "x-dead-letter-exchange": "dlx",
                "x-expires": 1500,
                "x-message-ttl": 2000,
            },
        ),
        Binding("q", "x", "a.#", {"b": 1}),
        Binding("q", "y", "k"),  # no_declare: bound, not declared
    ]


def test_queue_on_the_default_exchange_has_no_binding():
    assert queue_entities(KombuQueue("q", exchange=KombuExchange(""))) == [Queue("q")]
    assert queue_entities("q") == [Queue("q")]
    assert queue_entities(Queue("q"), "x", "k") == [
        Exchange("x", type="direct"),
        Queue("q"),
        Binding("q", "x", "k"),
    ]


def test_declare_lists_mix_kinds():
    assert entities_of(["x", WORK, KombuExchange("k", no_declare=True), Binding("q", "x")]) == [
        Exchange("x", type="direct"),
        WORK,
        Binding("q", "x"),
    ]


# -- nameko 3 header helpers ---------------------------------------------------------------


def test_header_helpers():
    assert encode_to_headers({"a": 1, "b": None}) == {"nameko.a": 1}
    assert encode_to_headers({"a": 1}, prefix="x") == {"x.a": 1}
    assert decode_from_headers({"nameko.a": 1, "other": 2}) == {"a": 1, "other": 2}
