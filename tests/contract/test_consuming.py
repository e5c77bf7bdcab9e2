"""Consumers: acks and rejects, prefetch, dispatch order and threading,
cancelling, closing, and what happens to unsettled deliveries."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nameko._broker.base import (
    Binding,
    Broker,
    BrokerError,
    Delivery,
    Exchange,
    NotFound,
    Properties,
    Unroutable,
)
from nameko._concurrency import Event, Lock, OneShot, current_thread_name
from tests.contract.conftest import WAIT, Collector, fence, transient_queue
from tests.waiting import wait_until

OpenBroker = Callable[..., Broker]


def publish_numbers(broker: Broker, queue: str, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        broker.publish("", queue, str(n).encode(), Properties())


def numbers(count: int, start: int = 0) -> list[bytes]:
    return [str(n).encode() for n in range(start, start + count)]


def left_in_queue(broker: Broker, queue: str) -> list[Delivery]:
    """What a fresh consumer of ``queue`` on ``broker`` still gets."""
    later = Collector(ack=True)
    broker.consume(queue, later)
    return fence(broker, queue, later)


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


def test_consuming_a_missing_queue_fails(broker: Broker) -> None:
    with pytest.raises(NotFound):
        broker.consume("missing", Collector())


def test_consume_declares_its_topology_first(broker: Broker) -> None:
    topology = [
        Exchange("ex", "direct", durable=False),
        transient_queue("q"),
        Binding("q", "ex", "k"),
    ]
    collector = Collector(ack=True)
    broker.consume("q", collector, topology=topology)
    broker.publish("ex", "k", b"routed", Properties(), mandatory=True)
    assert collector.wait_for(1)[0].body == b"routed"


def test_acked_messages_are_gone(open_broker: OpenBroker) -> None:
    first = open_broker()
    first.declare([transient_queue("q")])
    publish_numbers(first, "q", 3)
    collector = Collector(ack=True)
    first.consume("q", collector)
    collector.wait_for(3)
    first.close()

    assert left_in_queue(open_broker(), "q") == []


def test_reject_with_requeue_redelivers_at_the_head(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    publish_numbers(broker, "q", 3)
    collector = Collector()
    broker.consume("q", collector, prefetch=1)

    collector.wait_for(1)[0].reject(requeue=True)
    again = collector.wait_for(2)[1]
    assert (again.body, again.redelivered) == (b"0", True)
    again.ack()
    collector.wait_for(3)[2].ack()
    last = collector.wait_for(4)[3]
    last.ack()
    got = collector.deliveries
    assert [(d.body, d.redelivered) for d in got] == [
        (b"0", False),
        (b"0", True),
        (b"1", False),
        (b"2", False),
    ]


def test_reject_without_requeue_drops_the_message(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    publish_numbers(broker, "q", 2)
    collector = Collector()
    broker.consume("q", collector, prefetch=1)
    collector.wait_for(1)[0].reject(requeue=False)
    collector.wait_for(2)[1].ack()
    assert bodies(fence(broker, "q", collector)) == numbers(2)


def test_requeued_messages_go_back_to_their_original_position(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    publish_numbers(broker, "q", 6)
    holder = Collector()
    consumer = broker.consume("q", holder, prefetch=3)
    assert bodies(holder.wait_for(3)) == numbers(3)
    consumer.close()

    collector = Collector(ack=True)
    broker.consume("q", collector)
    got = collector.wait_for(6)
    assert [(d.body, d.redelivered) for d in got] == [(b, n < 3) for n, b in enumerate(numbers(6))]


def test_prefetch_limits_unacked_deliveries(open_broker: OpenBroker) -> None:
    broker, other = open_broker(), open_broker()
    broker.declare([transient_queue("q")])
    limited = Collector()
    broker.consume("q", limited, prefetch=2)
    publish_numbers(broker, "q", 5)
    limited.wait_for(2)

    # a consumer without a limit takes exactly what the first had no room for
    rest = Collector()
    rest_consumer = other.consume("q", rest)
    assert bodies(rest.wait_for(3)) == numbers(3, start=2)
    assert bodies(limited.deliveries) == numbers(2)

    # give those back; one ack makes room for exactly one more
    rest_consumer.close()
    limited.deliveries[0].ack()
    third = limited.wait_for(3)[2]
    assert (third.body, third.redelivered) == (b"2", True)
    late = Collector(ack=True)
    other.consume("q", late)
    assert bodies(late.wait_for(2)) == numbers(2, start=3)
    assert len(limited.deliveries) == 3


def test_competing_consumers_each_get_different_messages(open_broker: OpenBroker) -> None:
    first, second = open_broker(), open_broker()
    first.declare([transient_queue("q")])
    a, b = Collector(), Collector()
    first.consume("q", a, prefetch=1)
    second.consume("q", b, prefetch=1)
    publish_numbers(first, "q", 2)
    # each can hold one unacked message, so each must get one
    assert sorted(bodies(a.wait_for(1) + b.wait_for(1))) == numbers(2)


def test_a_queue_dispatches_round_robin(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    a, b = Collector(ack=True), Collector(ack=True)
    broker.consume("q", a)
    broker.consume("q", b)
    publish_numbers(broker, "q", 10)
    got = {tuple(bodies(a.wait_for(5))), tuple(bodies(b.wait_for(5)))}
    assert got == {tuple(numbers(10)[0::2]), tuple(numbers(10)[1::2])}


def test_no_ack_deliveries_are_settled_on_delivery(open_broker: OpenBroker) -> None:
    first = open_broker()
    first.declare([transient_queue("q")])
    collector = Collector(no_ack=True)
    first.consume("q", collector, no_ack=True, prefetch=1)  # prefetch has no effect
    publish_numbers(first, "q", 5)
    assert bodies(collector.wait_for(5)) == numbers(5)
    first.close()

    assert left_in_queue(open_broker(), "q") == []


def test_cancel_stops_deliveries_and_unsettled_ones_can_still_be_acked(
    open_broker: OpenBroker,
) -> None:
    broker, other = open_broker(), open_broker()
    broker.declare([transient_queue("q")])
    broker.publish("", "q", b"before", Properties())
    cancelled = Collector()
    consumer = broker.consume("q", cancelled)
    held = cancelled.wait_for(1)[0]

    consumer.cancel()
    consumer.cancel()  # idempotent
    broker.publish("", "q", b"after", Properties())
    successor = Collector(ack=True)
    other.consume("q", successor)
    assert successor.wait_for(1)[0].body == b"after"

    held.ack()
    broker.close()  # would requeue "before" had the ack not counted
    assert fence(other, "q", successor) == successor.deliveries
    assert bodies(successor.deliveries) == [b"after"]
    assert bodies(cancelled.deliveries) == [b"before"]


def test_closing_a_cancelled_consumer_requeues_what_it_holds(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    broker.publish("", "q", b"held", Properties())
    collector = Collector()
    consumer = broker.consume("q", collector)
    collector.wait_for(1)
    consumer.cancel()
    consumer.close()
    consumer.close()  # idempotent

    successor = Collector(ack=True)
    broker.consume("q", successor)
    again = successor.wait_for(1)[0]
    assert (again.body, again.redelivered) == (b"held", True)


def test_consumer_close_requeues_unsettled_deliveries(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    publish_numbers(broker, "q", 2)
    collector = Collector()
    consumer = broker.consume("q", collector)
    first, second = collector.wait_for(2)
    first.ack()
    consumer.close()
    second.ack()  # too late: the consumer is gone, the message went back

    successor = Collector(ack=True)
    broker.consume("q", successor)
    again = successor.wait_for(1)[0]
    assert (again.body, again.redelivered) == (b"1", True)
    assert fence(broker, "q", successor) == [again]


def test_broker_close_requeues_unsettled_deliveries(open_broker: OpenBroker) -> None:
    closing, other = open_broker(), open_broker()
    closing.declare([transient_queue("q")])
    publish_numbers(closing, "q", 2)
    collector = Collector()
    closing.consume("q", collector)
    held = collector.wait_for(2)
    held[0].ack()

    closing.close()
    held[1].ack()  # after close: does nothing
    publish_numbers(other, "q", 1, start=2)
    successor = Collector(ack=True)
    other.consume("q", successor)
    got = successor.wait_for(2)
    assert [(d.body, d.redelivered) for d in got] == [(b"1", True), (b"2", False)]
    assert fence(other, "q", successor) == got


def test_callbacks_run_one_at_a_time_off_the_publishing_thread(broker: Broker) -> None:
    broker.declare([transient_queue("a"), transient_queue("b")])
    lock = Lock()
    running: list[int] = [0]
    overlap: list[int] = []
    collectors = {"a": Collector(ack=True), "b": Collector(ack=True)}

    def watching(collector: Collector) -> Callable[[Delivery], None]:
        def on_message(delivery: Delivery) -> None:
            with lock:
                running[0] += 1
                overlap.append(running[0])
            Event().wait(0.001)  # widen the window in which another callback could start
            with lock:
                running[0] -= 1
            collector(delivery)

        return on_message

    for queue, collector in collectors.items():
        broker.consume(queue, watching(collector))
    for n in range(20):
        broker.publish("", "a" if n % 2 else "b", b"m", Properties())
    collectors["a"].wait_for(10)
    collectors["b"].wait_for(10)
    assert max(overlap) == 1
    threads = set(collectors["a"].threads + collectors["b"].threads)
    assert current_thread_name() not in threads


def test_each_queue_is_delivered_in_order(broker: Broker) -> None:
    broker.declare([transient_queue("a"), transient_queue("b")])
    a, b = Collector(ack=True), Collector(ack=True)
    broker.consume("a", a)
    broker.consume("b", b)
    for n in range(100):
        broker.publish("", "a", str(n).encode(), Properties())
        broker.publish("", "b", str(n).encode(), Properties(), confirm=False)
    assert bodies(a.wait_for(100)) == numbers(100)
    assert bodies(b.wait_for(100)) == numbers(100)


def test_a_confirmed_publish_from_the_dispatch_thread_raises(broker: Broker) -> None:
    broker.declare([transient_queue("in"), transient_queue("out")])
    outcome: OneShot[BaseException | None] = OneShot()

    def on_message(delivery: Delivery) -> None:
        try:
            broker.publish("", "out", b"confirmed", Properties())
        except BrokerError as exc:
            outcome.send(exc)
        else:
            outcome.send(None)
        broker.publish("", "out", b"unconfirmed", Properties(), confirm=False)
        delivery.ack()

    broker.consume("in", on_message)
    broker.publish("", "in", b"go", Properties())
    assert isinstance(outcome.get(WAIT), BrokerError)
    out = Collector(ack=True)
    broker.consume("out", out)
    assert bodies(fence(broker, "out", out)) == [b"unconfirmed"]


def test_a_callback_that_raises_does_not_stop_dispatching(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    collector = Collector(ack=True)

    def on_message(delivery: Delivery) -> None:
        collector(delivery)
        if delivery.body == b"boom":
            raise RuntimeError("a buggy callback")

    broker.consume("q", on_message)
    broker.publish("", "q", b"boom", Properties())
    broker.publish("", "q", b"fine", Properties())
    assert bodies(collector.wait_for(2)) == [b"boom", b"fine"]


def test_deleting_a_queue_ends_its_consumers(broker: Broker) -> None:
    broker.declare([transient_queue("q")])
    old = Collector(ack=True)
    broker.consume("q", old)
    broker.delete_queue("q")

    broker.declare([transient_queue("q")])
    new = Collector(ack=True)
    broker.consume("q", new)
    publish_numbers(broker, "q", 4)
    assert bodies(fence(broker, "q", new)) == numbers(4)
    assert old.deliveries == []


def test_a_consumer_declaring_its_queue_gets_it_back_when_it_is_deleted(
    open_broker: OpenBroker,
) -> None:
    """As kombu's consumers do: the queue and its binding are declared again
    and consuming goes on; a delivery from the old queue settles as a no-op."""
    owner, admin = open_broker(), open_broker()
    topology = [
        Exchange("ex", "direct", durable=False),
        transient_queue("q"),
        Binding("q", "ex", "k"),
    ]
    collector = Collector()
    owner.consume("q", collector, topology=topology)
    owner.publish("ex", "k", b"old", Properties())
    held = collector.wait_for(1)[0]
    admin.delete_queue("q")

    def routed() -> bool:
        try:
            admin.publish("ex", "k", b"new", Properties(), mandatory=True)
        except Unroutable:  # not bound again yet
            return False
        return True

    wait_until(routed, WAIT, 0.01, what="q declared and bound again")
    held.ack()
    assert bodies(fence(admin, "q", collector)) == [b"old", b"new"]  # nothing redelivered


def test_a_consumer_is_told_once_its_lost_queue_is_bound_again(open_broker: OpenBroker) -> None:
    """``on_queue_lost``: not for the first declaration; once per deletion,
    when the queue is declared and bound again (a message published then is
    routed to it), on the dispatch thread."""
    owner, admin = open_broker(), open_broker()
    topology = [
        Exchange("ex", "direct", durable=False),
        transient_queue("q"),
        Binding("q", "ex", "k"),
    ]
    told: list[str] = []
    back = Event()

    def on_queue_lost() -> None:
        told.append(current_thread_name())
        back.set()

    collector = Collector(ack=True)
    owner.consume("q", collector, topology=topology, on_queue_lost=on_queue_lost)
    owner.publish("ex", "k", b"before", Properties(), mandatory=True)
    collector.wait_for(1)
    assert told == []
    admin.delete_queue("q")
    assert back.wait(WAIT)
    admin.publish("ex", "k", b"after", Properties(), mandatory=True)  # routed: no Unroutable
    assert bodies(fence(admin, "q", collector)) == [b"before", b"after"]
    assert len(told) == 1 and told[0] != current_thread_name()


def test_closing_from_inside_a_callback(open_broker: OpenBroker) -> None:
    closing, other = open_broker(), open_broker()
    closing.declare([transient_queue("q")])
    closed = Event()

    def on_message(delivery: Delivery) -> None:
        closing.close()  # unsettled: goes back to the queue
        closed.set()

    closing.consume("q", on_message)
    closing.publish("", "q", b"m", Properties())
    assert closed.wait(WAIT)
    assert not closing.is_connected
    successor = Collector(ack=True)
    other.consume("q", successor)
    again = successor.wait_for(1)[0]
    assert (again.body, again.redelivered) == (b"m", True)


def test_ack_on_return_acks_each_delivery_once_its_callback_returns(
    open_broker: OpenBroker,
) -> None:
    first = open_broker()
    first.declare([transient_queue("q")])
    publish_numbers(first, "q", 5)
    collector = Collector(no_ack=True)  # settles nothing itself
    first.consume("q", collector, ack_on_return=True, prefetch=1)  # unacked, one would come
    assert bodies(collector.wait_for(5)) == numbers(5)
    first.close()

    assert left_in_queue(open_broker(), "q") == []


def test_ack_on_return_acks_a_delivery_whose_callback_raised(open_broker: OpenBroker) -> None:
    first = open_broker()
    first.declare([transient_queue("q")])
    publish_numbers(first, "q", 2)
    seen = Collector(no_ack=True)

    def fail(delivery: Delivery) -> None:
        seen(delivery)
        raise RuntimeError("the callback failed")

    first.consume("q", fail, ack_on_return=True, prefetch=1)
    assert bodies(seen.wait_for(2)) == numbers(2)
    first.close()

    assert left_in_queue(open_broker(), "q") == []
