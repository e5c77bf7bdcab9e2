"""Queue lifetimes (exclusive, auto-delete, x-expires) and the connection's own."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nameko._broker.base import (
    Binding,
    Broker,
    BrokerClosed,
    ChannelError,
    Exchange,
    Properties,
    Queue,
)
from tests.contract.conftest import WAIT, Collector, queue_exists, transient_queue
from tests.waiting import wait_until

OpenBroker = Callable[..., Broker]
RESOURCE_LOCKED = 405


def exclusive(name: str) -> Queue:
    return Queue(name, durable=False, exclusive=True)


# -- exclusive queues


@pytest.mark.parametrize(
    "operation",
    [
        lambda b: b.declare([exclusive("private")]),
        lambda b: b.declare([transient_queue("private")]),
        lambda b: b.declare([Binding("private", "amq.direct", "k")]),
        lambda b: b.consume("private", Collector()),
        lambda b: b.delete_queue("private"),
    ],
    ids=["redeclare", "redeclare-shared", "bind", "consume", "delete"],
)
def test_an_exclusive_queue_is_locked_to_its_connection(
    open_broker: OpenBroker, operation: Callable[[Broker], object]
) -> None:
    owner, other = open_broker(), open_broker()
    owner.declare([exclusive("private")])
    with pytest.raises(ChannelError) as info:
        operation(other)
    assert info.value.reply_code == RESOURCE_LOCKED
    owner.declare([exclusive("private"), Binding("private", "amq.direct", "k")])


def test_exclusivity_must_match_on_redeclaration(broker: Broker) -> None:
    broker.declare([transient_queue("shared"), exclusive("private")])
    with pytest.raises(ChannelError) as made_exclusive:
        broker.declare([exclusive("shared")])
    with pytest.raises(ChannelError) as made_shared:
        broker.declare([transient_queue("private")])
    assert made_exclusive.value.reply_code == made_shared.value.reply_code == RESOURCE_LOCKED


def test_an_exclusive_queue_vanishes_when_its_connection_closes(open_broker: OpenBroker) -> None:
    owner, other = open_broker(), open_broker()
    owner.declare([exclusive("private")])
    owner.publish("", "private", b"dies with it", Properties())
    owner.close()

    assert not queue_exists(other, "private")
    other.declare([transient_queue("private")])
    collector = Collector(ack=True)
    other.consume("private", collector)
    other.publish("", "private", b"new", Properties())
    assert collector.wait_for(1)[0].body == b"new"
    assert collector.bodies == [b"new"]


# -- auto-delete queues


def test_an_auto_delete_queue_goes_when_its_last_consumer_is_cancelled(broker: Broker) -> None:
    broker.declare([Queue("q", durable=False, auto_delete=True)])
    first = broker.consume("q", Collector())
    second = broker.consume("q", Collector())
    first.cancel()
    assert queue_exists(broker, "q")
    second.cancel()
    assert not queue_exists(broker, "q")


def test_an_auto_delete_queue_goes_when_its_consumer_is_closed(open_broker: OpenBroker) -> None:
    consuming, other = open_broker(), open_broker()
    consuming.declare([Queue("by-consumer", durable=False, auto_delete=True)])
    consuming.declare([Queue("by-connection", durable=False, auto_delete=True)])
    consuming.consume("by-consumer", Collector()).close()
    consuming.consume("by-connection", Collector())
    consuming.close()
    assert not queue_exists(other, "by-consumer")
    assert not queue_exists(other, "by-connection")


def test_an_auto_delete_queue_never_consumed_stays(open_broker: OpenBroker) -> None:
    declaring, other = open_broker(), open_broker()
    declaring.declare([Queue("q", durable=False, auto_delete=True)])
    declaring.close()
    assert queue_exists(other, "q")


# -- x-expires


def test_an_unused_queue_expires(open_broker: OpenBroker) -> None:
    declaring, watching = open_broker(), open_broker()
    declaring.declare([transient_queue("q", **{"x-expires": 300})])
    declaring.publish("", "q", b"publishing does not count as use", Properties())
    assert queue_exists(watching, "q")
    wait_until(lambda: not queue_exists(watching, "q"), WAIT, 0.02, what="queue q expired")


def test_a_consumer_keeps_an_expiring_queue_alive(broker: Broker) -> None:
    broker.declare([transient_queue("used", **{"x-expires": 300})])
    consumer = broker.consume("used", Collector())
    broker.declare([transient_queue("unused", **{"x-expires": 300})])
    # "unused" was declared later with the same x-expires: once it is gone,
    # "used" would be gone too, were its consumer not keeping it
    wait_until(lambda: not queue_exists(broker, "unused"), WAIT, 0.02, what="queue unused expired")
    assert queue_exists(broker, "used")

    consumer.cancel()
    wait_until(lambda: not queue_exists(broker, "used"), WAIT, 0.02, what="queue used expired")


# -- the connection


def test_a_closed_connection_refuses_everything(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    assert broker.is_connected
    broker.close()
    broker.close()  # idempotent
    assert not broker.is_connected
    with pytest.raises(BrokerClosed):
        broker.declare([transient_queue("q")])
    with pytest.raises(BrokerClosed):
        broker.publish("", "q", b"m", Properties())
    with pytest.raises(BrokerClosed):
        broker.consume("q", Collector())
    with pytest.raises(BrokerClosed):
        broker.delete_queue("q")


def test_the_connection_is_a_context_manager(open_broker: OpenBroker) -> None:
    with open_broker() as broker:
        broker.declare([Exchange("ex", durable=False)])
        assert broker.is_connected
    assert not broker.is_connected


def test_connection_options_and_reconnect_listeners_are_accepted(
    open_broker: OpenBroker,
) -> None:
    broker = open_broker(heartbeat=30, connection_name="contract", transport_options={})
    calls: list[None] = []
    broker.add_reconnect_listener(lambda: calls.append(None))
    broker.declare([transient_queue("q")])
    collector = Collector(ack=True)
    broker.consume("q", collector)
    broker.publish("", "q", b"m", Properties())
    collector.wait_for(1)
    assert calls == []  # nothing dropped, nothing to report
