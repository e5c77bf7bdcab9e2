"""Dead-lettering (``x-dead-letter-exchange``): what shimeji's retries and
poison-message limits rely on, the same on both brokers."""

from __future__ import annotations

import pytest

from nameko._broker.base import Binding, Broker, Exchange, Properties, Queue
from tests.contract.conftest import Collector


def _delay_queue(name: str, ttl_ms: int, **arguments) -> Queue:
    return Queue(
        name,
        durable=False,
        auto_delete=False,
        arguments={"x-message-ttl": ttl_ms, "x-dead-letter-exchange": "", **arguments},
    )


def test_an_expired_message_goes_to_its_dead_letter_exchange_with_its_routing_key(
    broker: Broker,
) -> None:
    broker.declare(
        [
            Exchange("delays", type="headers", durable=False),
            _delay_queue("delay-50", 50),
            Binding("delay-50", "delays", "", {"x-match": "all", "delay": "50"}),
            Queue("target", durable=False),
        ]
    )
    collector = Collector(ack=True)
    broker.consume("target", collector)
    props = Properties(headers={"delay": "50", "attempt": 2}, expiration="60000", priority=3)
    broker.publish("delays", "target", b"later", props)  # nobody consumes delay-50

    [delivery] = collector.wait_for(1)
    assert delivery.body == b"later"
    assert delivery.routing_key == "target"
    assert delivery.properties.expiration is None  # removed on dead-lettering
    assert delivery.properties.priority == 3
    headers = delivery.properties.headers
    assert headers["attempt"] == 2
    [death] = headers["x-death"]
    assert (death["reason"], death["queue"], death["count"]) == ("expired", "delay-50", 1)
    assert death["exchange"] == "delays"
    assert death["routing-keys"] == ["target"]
    assert headers["x-first-death-reason"] == "expired"
    assert headers["x-first-death-queue"] == "delay-50"


def test_messages_expire_in_order_and_a_dead_letter_routing_key_wins(broker: Broker) -> None:
    broker.declare(
        [
            _delay_queue("delay", 30, **{"x-dead-letter-routing-key": "target"}),
            Queue("target", durable=False),
        ]
    )
    collector = Collector(ack=True)
    broker.consume("target", collector)
    for n in range(5):
        broker.publish("", "delay", str(n).encode(), Properties())
    deliveries = collector.wait_for(5)
    assert [d.body for d in deliveries] == [b"0", b"1", b"2", b"3", b"4"]
    assert {d.routing_key for d in deliveries} == {"target"}


def test_a_rejected_message_is_dead_lettered_and_a_requeued_one_is_not(broker: Broker) -> None:
    broker.declare(
        [
            Queue(
                "work",
                durable=False,
                arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"},
            ),
            Queue("dead", durable=False),
        ]
    )
    work, dead = Collector(), Collector(ack=True)
    broker.consume("work", work)
    broker.consume("dead", dead)
    broker.publish("", "work", b"bad", Properties(headers={"k": "v"}))
    first = work.wait_for(1)[0]
    first.reject(requeue=True)
    again = work.wait_for(2)[1]
    assert again.redelivered
    again.reject(requeue=False)

    [delivery] = dead.wait_for(1)
    assert delivery.body == b"bad" and delivery.routing_key == "dead"
    [death] = delivery.properties.headers["x-death"]
    assert (death["reason"], death["queue"], death["routing-keys"]) == (
        "rejected",
        "work",
        ["work"],
    )
    assert delivery.properties.headers["k"] == "v"


def test_queue_size_counts_the_messages_ready_for_delivery(broker: Broker) -> None:
    from nameko._broker.base import NotFound

    broker.declare([Queue("counted", durable=False)])
    assert broker.queue_size("counted") == 0
    for n in range(3):
        broker.publish("", "counted", str(n).encode(), Properties())
    assert broker.queue_size("counted") == 3
    with pytest.raises(NotFound):
        broker.queue_size("no-such-queue")


def test_a_quorum_queue_counts_returns_in_a_header(broker: Broker) -> None:
    broker.declare([Queue("counting", arguments={"x-queue-type": "quorum"})])
    broker.publish("", "counting", b"x", Properties())
    counts = []
    for _ in range(3):
        collector = Collector()
        consumer = broker.consume("counting", collector, prefetch=1)
        [delivery] = collector.wait_for(1)
        counts.append((delivery.redelivered, delivery.properties.headers.get("x-delivery-count")))
        consumer.close()  # back to the queue
    assert counts == [(False, None), (True, 1), (True, 2)]
    broker.delete_queue("counting")
