"""Reading and re-publishing dead letters (``nameko dead-letters``).

A dead-letter queue is an ordinary durable queue, so this is consuming with
care: `peek` takes up to N messages and gives them back (closing the
consumer requeues them), `republish` sends each message to where it came
from (its ``x-nameko-original-*`` headers) with a fresh attempt count and
acks it only once the broker confirmed the copy. `list_queues` needs a
queue listing, which AMQP does not offer: it asks ``rabbitmqctl``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from nameko._broker.base import Broker, Delivery, Unroutable
from nameko._concurrency import Condition, deadline_after, remaining
from nameko._protocol import retries as wire
from nameko._protocol.deadlines import DEADLINE_HEADER
from nameko.exceptions import CommandError

__all__ = ["list_queues", "peek", "queue_name", "republish"]

WAIT = 10.0  # seconds to wait for messages the queue says it holds


def queue_name(given: str) -> str:
    """``service.method`` or the queue's own name -> the queue's name."""
    return given if given.startswith(wire.DEAD_LETTER_PREFIX) else f"dlq-{given}"


def list_queues(vhost: str, run: Callable[..., Any] = subprocess.run) -> list[tuple[str, int]]:
    """``(queue, messages)`` for every dead-letter queue of ``vhost``."""
    command = ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages"]
    try:
        out = run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandError(f"listing queues needs rabbitmqctl on this host ({exc})") from None
    if out.returncode != 0:
        raise CommandError(f"rabbitmqctl could not list the queues: {out.stderr.strip()}")
    found = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if (
            len(fields) == 2
            and fields[0].startswith(wire.DEAD_LETTER_PREFIX)
            and fields[1].isdigit()
        ):
            found.append((fields[0], int(fields[1])))
    return sorted(found)


class _Inbox:
    """Deliveries handed over from the broker's dispatch thread."""

    def __init__(self) -> None:
        self.items: list[Delivery] = []
        self._changed = Condition()

    def __call__(self, delivery: Delivery) -> None:
        with self._changed:
            self.items.append(delivery)
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[Delivery]:
        deadline = deadline_after(WAIT)
        with self._changed:
            while len(self.items) < count and (left := remaining(deadline) or 0.0) > 0:
                self._changed.wait(left)
            return list(self.items[:count])


def _take(broker: Broker, queue: str, count: int | None) -> tuple[Any, list[Delivery]]:
    """Consume up to ``count`` (all if None) of the messages waiting now."""
    waiting = broker.queue_size(queue)
    wanted = waiting if count is None else min(count, waiting)
    inbox = _Inbox()
    if wanted == 0:
        return None, []
    consumer = broker.consume(queue, inbox, prefetch=wanted)
    return consumer, inbox.wait_for(wanted)


def peek(broker: Broker, queue: str, count: int) -> list[Delivery]:
    """Up to ``count`` dead letters, left in the queue."""
    consumer, deliveries = _take(broker, queue, count)
    if consumer is not None:
        consumer.close()  # gives every one of them back
    return deliveries


def republish(broker: Broker, queue: str, count: int | None) -> list[tuple[str, str]]:
    """Send up to ``count`` dead letters (all if None) back where they came
    from, each acked once its copy is confirmed; returns their destinations.
    A message the broker can't route any more stays in the queue."""
    consumer, deliveries = _take(broker, queue, count)
    sent: list[tuple[str, str]] = []
    try:
        for delivery in deliveries:
            sent.append(_send_back(broker, delivery))
            delivery.ack()
    finally:
        if consumer is not None:
            consumer.close()  # those not sent go back
    return sent


def _send_back(broker: Broker, delivery: Delivery) -> tuple[str, str]:
    headers = dict(delivery.properties.headers or {})
    exchange = headers.get(wire.ORIGIN_EXCHANGE_HEADER)
    routing_key = headers.get(wire.ORIGIN_ROUTING_KEY_HEADER)
    if not isinstance(exchange, str) or not isinstance(routing_key, str):
        raise CommandError(
            f"a message in the queue does not say where it came from "
            f"({wire.ORIGIN_EXCHANGE_HEADER} missing): left in the queue"
        )
    # a fresh start: no attempt or delivery count, and no deadline (its caller is long gone)
    fresh = {
        k: v for k, v in headers.items() if not wire.is_control_header(k) and k != DEADLINE_HEADER
    }
    properties = replace(delivery.properties, headers=fresh)
    try:
        broker.publish(exchange, routing_key, delivery.body, properties, mandatory=True)
    except Unroutable:
        raise CommandError(
            f"nothing consumes {exchange or '(default exchange)'}/{routing_key} any more: "
            "that message and the rest are left in the queue"
        ) from None
    return exchange, routing_key
