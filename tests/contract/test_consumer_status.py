"""What a connection says about its consumers and itself (`/readyz`, `/healthz`, metrics).

`Broker.consumer_status` lists the consumers their owners still want, each
attached or not; `Broker.is_alive` is True until the connection is closed;
`Broker.stats` counts publishes and their outcomes. Both brokers alike.
"""

from __future__ import annotations

import secrets

import pytest

from nameko._broker.base import (
    Broker,
    ConsumerStatus,
    NotFound,
    Properties,
    Queue,
    Unroutable,
)
from tests.contract.conftest import Collector, fence
from tests.waiting import wait_until


def _name() -> str:
    return f"status-{secrets.token_hex(4)}"


def test_a_consumer_is_attached_until_its_owner_cancels_it(broker: Broker) -> None:
    queue = _name()
    consumer = broker.consume(queue, Collector(ack=True), topology=[Queue(queue, durable=False)])
    assert consumer.attached
    assert broker.consumer_status() == [ConsumerStatus(queue, True)]
    consumer.cancel()
    assert not consumer.attached
    assert broker.consumer_status() == []  # nobody wants it any more


def test_a_consumer_the_broker_ends_for_good_is_listed_as_lost(broker: Broker) -> None:
    queue = _name()
    broker.declare([Queue(queue, durable=False)])
    consumer = broker.consume(queue, Collector(ack=True))  # does not declare its queue
    broker.delete_queue(queue)
    wait_until(lambda: consumer.lost, timeout=5, what="the broker cancelled the consumer")
    assert broker.consumer_status() == [ConsumerStatus(queue, False)]
    consumer.cancel()  # its owner gives up on it: no longer wanted
    assert broker.consumer_status() == []


def test_a_consumer_that_declares_its_queue_is_attached_again(broker: Broker) -> None:
    queue = _name()
    collector = Collector(ack=True)
    consumer = broker.consume(queue, collector, topology=[Queue(queue, durable=False)])
    broker.delete_queue(queue)
    # only the consumer declares the queue again, so once it exists the
    # broker's cancel was seen, and attached means consuming the new queue
    wait_until(lambda: _exists(broker, queue) and consumer.attached, timeout=5, what="restored")
    fence(broker, queue, collector)  # it consumes the new queue
    assert consumer.attached and not consumer.lost
    assert broker.consumer_status() == [ConsumerStatus(queue, True)]


def _exists(broker: Broker, queue: str) -> bool:
    try:
        broker.queue_size(queue)
    except NotFound:
        return False
    return True


def test_a_closed_connection_is_not_alive(open_broker) -> None:
    broker = open_broker()
    assert broker.is_alive and broker.is_connected
    queue = _name()
    consumer = broker.consume(queue, Collector(), topology=[Queue(queue, durable=False)])
    broker.close()
    assert not broker.is_alive
    assert not consumer.attached


def test_stats_count_publishes_and_their_outcomes(broker: Broker) -> None:
    queue = _name()
    broker.declare([Queue(queue, durable=False)])
    before = broker.stats.published
    broker.publish("", queue, b"one", Properties())
    broker.publish("", queue, b"two", Properties(), confirm=False)
    with pytest.raises(Unroutable):
        broker.publish("", "nowhere-" + queue, b"three", Properties(), mandatory=True)
    stats = broker.stats
    assert stats.published - before == 3
    # an unconfirmed publish is settled later, on RabbitMQ: wait for its confirm
    wait_until(lambda: stats.confirmed == stats.published, timeout=5, what="confirms")
    assert (stats.returned, stats.nacked, stats.reconnects) == (1, 0, 0)
