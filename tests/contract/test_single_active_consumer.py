"""``x-single-active-consumer`` queues and `Delivery.held`: what the
cluster-singleton schedules (`nameko._schedule`, D28) stand on. Only the
earliest consumer of such a queue gets deliveries; when its channel or
connection goes, its unsettled messages and the queue pass to the next."""

from __future__ import annotations

from collections.abc import Callable

from nameko._broker.base import Broker, Properties
from tests.contract.conftest import Collector, fence, queue_exists, transient_queue
from tests.waiting import wait_until

OpenBroker = Callable[..., Broker]
SAC = {"x-single-active-consumer": True}


def test_only_the_first_consumer_gets_messages_until_its_connection_closes(
    open_broker: OpenBroker,
) -> None:
    first_conn, second_conn = open_broker(), open_broker()
    topology = [transient_queue("lease", **SAC)]
    first, second = Collector(), Collector()
    first_conn.consume("lease", first, prefetch=1, topology=topology)
    second_conn.consume("lease", second, prefetch=1, topology=topology)
    for body in (b"a", b"b", b"c"):
        second_conn.publish("", "lease", body, Properties())

    [held] = first.wait_for(1)
    assert held.body == b"a" and held.held
    assert second_conn.queue_size("lease") == 2  # the second consumer waits, idle
    assert second.deliveries == []

    first_conn.close()  # what a SIGKILL of its process amounts to
    assert second.wait_for(1)[0].body == b"a"  # requeued, to the next consumer
    assert not held.held  # its channel is gone
    assert second.deliveries[0].redelivered


def test_a_cancelled_active_consumer_hands_over_only_what_it_rejects(
    open_broker: OpenBroker,
) -> None:
    conn = open_broker()
    topology = [transient_queue("lease", **SAC)]
    first, second = Collector(), Collector()
    consumer = conn.consume("lease", first, prefetch=1, topology=topology)
    conn.consume("lease", second, prefetch=1, topology=topology)
    conn.publish("", "lease", b"token", Properties())
    [held] = first.wait_for(1)

    consumer.cancel()
    assert held.held  # still ours after a cancel (graceful stop)
    conn.publish("", "lease", b"spare", Properties())
    assert second.wait_for(1)[0].body == b"spare"  # the next one is active now
    held.reject(requeue=True)
    assert not held.held
    second.deliveries[0].ack()
    assert [d.body for d in second.wait_for(2)] == [b"spare", b"token"]


def test_held_ends_with_a_settle_or_a_closed_consumer(broker: Broker) -> None:
    collector = Collector()
    consumer = broker.consume("q", collector, topology=[transient_queue("q")])
    broker.publish("", "q", b"1", Properties())
    broker.publish("", "q", b"2", Properties())
    one, two = collector.wait_for(2)
    assert one.held and two.held
    one.ack()
    assert not one.held and two.held
    consumer.close()
    assert not two.held


def test_max_length_counts_only_ready_messages(open_broker: OpenBroker) -> None:
    conn = open_broker()
    topology = [transient_queue("lease", **SAC, **{"x-max-length": 1})]
    holder = Collector()
    conn.consume("lease", holder, prefetch=1, topology=topology)
    for body in (b"1", b"2", b"3"):
        conn.publish("", "lease", body, Properties())
    holder.wait_for(1)
    wait_until(lambda: conn.queue_size("lease") == 1, timeout=5)  # 2 was dropped for 3
    other = open_broker()
    assert other.queue_size("lease") == 1


def test_held_ends_when_the_queue_is_deleted(open_broker: OpenBroker) -> None:
    conn, admin = open_broker(), open_broker()
    collector = Collector()
    topology = [transient_queue("lease", **SAC)]
    conn.consume("lease", collector, prefetch=1, topology=topology)
    admin.publish("", "lease", b"token", Properties())
    [held] = collector.wait_for(1)
    admin.delete_queue("lease")  # the consumer declares it again (D15), empty
    wait_until(lambda: not held.held, timeout=5)
    wait_until(lambda: queue_exists(admin, "lease"), timeout=5)
    admin.publish("", "lease", b"new", Properties())
    new = collector.wait_for(2)[1]  # the deleted queue's delivery takes no prefetch slot
    assert new.body == b"new" and new.held
    # an ack of the deleted queue's delivery is harmless; on RabbitMQ 3.10 a
    # reject with requeue is not (the channel is reset: `new` would come again)
    held.ack()
    assert new.held
    new.ack()
    assert fence(conn, "lease", collector) == [held, new]  # nothing came again
