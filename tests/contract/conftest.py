"""The broker contract: one set of tests, run against both brokers.

Every test here talks to the seam only (`nameko._broker.connect` and the types
of `nameko._broker.base`), so whatever it asserts is true of the in-memory
broker and of RabbitMQ alike. That is what makes the memory broker a verified
fake. The ``rabbit`` param needs the real broker (``-m "not rabbit"`` or
``-k memory`` to leave it out).

Deliveries arrive on the broker's dispatch thread: tests collect them with a
`Collector` and wait on it with a deadline, never with a sleep. To show that
something did *not* arrive, send a `fence` message through the same queue:
queues are FIFO, so once the fence is in, everything before it is too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nameko._broker import connect
from nameko._broker.base import (
    Binding,
    Broker,
    Delivery,
    Exchange,
    NotFound,
    Properties,
    Queue,
)
from nameko._concurrency import Condition, current_thread_name, deadline_after, remaining

WAIT = 5.0  # seconds; generous for a loaded machine, a passing wait returns at once
FENCE = b"\x00contract-fence:"  # body prefix of fence messages


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("rabbit", id="rabbit", marks=pytest.mark.rabbit),
    ]
)
def broker_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker nobody else uses: a fresh memory server or a fresh RabbitMQ vhost."""
    if request.param == "rabbit":
        yield request.getfixturevalue("rabbit_uri")
        return
    uri = f"memory://contract-{secrets.token_hex(8)}"
    yield uri
    from nameko._broker import memory

    memory.reset(uri)  # teardown plumbing only: the tests themselves stay on the seam


@pytest.fixture
def open_broker(broker_uri: str) -> Iterator[Callable[..., Broker]]:
    """Factory for connections to the test's broker; all are closed at teardown."""
    opened: list[Broker] = []

    def factory(**options: Any) -> Broker:
        broker = connect(broker_uri, **options)
        opened.append(broker)
        return broker

    yield factory
    for broker in reversed(opened):
        broker.close()


@pytest.fixture
def broker(open_broker: Callable[..., Broker]) -> Broker:
    return open_broker()


class Collector:
    """An ``on_message`` callback that records deliveries for the test to wait on.

    ``ack=True`` acks each delivery as it arrives. Fence messages are always
    settled here (unless ``no_ack``) and kept out of `deliveries`.
    """

    def __init__(self, *, ack: bool = False, no_ack: bool = False) -> None:
        self._ack = ack
        self._no_ack = no_ack
        self._changed = Condition()
        self._all: list[Delivery] = []  # including fences, in arrival order
        self.threads: list[str] = []

    def __call__(self, delivery: Delivery) -> None:
        if not self._no_ack and (self._ack or delivery.body.startswith(FENCE)):
            delivery.ack()
        with self._changed:
            self._all.append(delivery)
            self.threads.append(current_thread_name())
            self._changed.notify_all()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return [d for d in self._all if not d.body.startswith(FENCE)]

    @property
    def bodies(self) -> list[bytes]:
        return [d.body for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Delivery]:
        """Wait until ``count`` deliveries (fences excluded) arrived; return them all."""
        self._wait(lambda: len(self.deliveries) >= count, f"{count} deliveries", timeout)
        return self.deliveries

    def wait_for_body(self, body: bytes, timeout: float = WAIT) -> list[Delivery]:
        """Wait for a delivery with ``body``; return the deliveries that came before it."""
        self._wait(lambda: any(d.body == body for d in self._all), f"body {body!r}", timeout)
        with self._changed:
            index = next(i for i, d in enumerate(self._all) if d.body == body)
            return [d for d in self._all[:index] if not d.body.startswith(FENCE)]

    def _wait(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = deadline_after(timeout)
        with self._changed:
            while not done():
                left = remaining(deadline)
                if left == 0.0:
                    raise AssertionError(f"no {what} within {timeout}s; got {self.bodies!r}")
                self._changed.wait(left)


def fence(broker: Broker, queue: str, collector: Collector) -> list[Delivery]:
    """Send a marker through ``queue`` and wait for it: returns every delivery
    (fences excluded) that ``collector`` received before it. The collector must
    be the queue's only consumer and have room for one more delivery."""
    body = FENCE + secrets.token_hex(4).encode()
    broker.publish("", queue, body, Properties())
    return collector.wait_for_body(body)


PROBE_EXCHANGE = "contract-probe"


def queue_exists(broker: Broker, name: str) -> bool:
    """Whether queue ``name`` exists, asked without consuming or re-declaring it
    (neither of which may count as "using" it: x-expires, auto-delete). Binding
    it to an otherwise unused fanout exchange is harmless when it does exist."""
    try:
        broker.declare(
            [Exchange(PROBE_EXCHANGE, "fanout", durable=False), Binding(name, PROBE_EXCHANGE)]
        )
    except NotFound:
        return False
    return True


def transient_queue(name: str, **arguments: Any) -> Queue:
    return Queue(name, durable=False, arguments=arguments)
