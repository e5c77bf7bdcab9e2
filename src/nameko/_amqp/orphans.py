"""Jobs that outlive their delivery: recognising the broker's redelivered
copy of a message this process is still working on (or just finished).

How it works. RabbitMQ takes a delivery back when the channel that carried
it closes: the connection dropped, or the broker closed the channel itself,
most often because the delivery stayed unacked longer than its
``consumer_timeout``. The worker running it does not stop, but its ack can
no longer reach the broker, which requeues the message and delivers it again,
usually to the same consumer once it is restored. Run again, the job would
run twice at the same time, and the copy would count as a second delivery
(a message that "keeps coming back" is dead-lettered as poison).

A consumer that opts in (`RabbitConsumer`, ``adopt_redeliveries``) keeps
the deliveries it handed out and has not settled, per channel incarnation
(`Lease.unsettled`: one dict store and one pop per message, the only cost on
the hot path). When an incarnation dies while the consumer goes on, its
unsettled deliveries become *orphans* here, identified by exchange, routing
key, properties (without the broker's ``x-delivery-count``) and a digest of
the body. A redelivered message that matches an orphan is *adopted*: it is
not handed to the consumer's callback; the orphan's settlement, whenever the
worker makes it, is applied to the copy instead (an RPC request is acked
once its reply is confirmed, as before). A copy that arrives after the
worker settled its orphan gets that settlement at once (kept for
`FINISHED_TTL` seconds, at most `FINISHED_MAX` of them; a job that gave
its message back, requeued, lets its copy run). An adopted copy is
itself an unsettled delivery of its incarnation, so a copy whose channel
dies in turn is orphaned and adopted again: the settlement follows the chain.

What it cannot do: a copy that RabbitMQ gives to another consumer (another
instance of the service) runs there; delivery stays at-least-once. Two
byte-identical messages in flight on the same channel are matched one to
one, which is all the broker lets anyone tell apart.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from dataclasses import replace
from typing import Any, Protocol

from nameko import _concurrency
from nameko._broker.base import Delivery

__all__ = ["FINISHED_MAX", "FINISHED_TTL", "Orphans", "identity"]

log = logging.getLogger("nameko._broker.rabbit")

FINISHED_TTL = 300.0  # seconds a settled orphan waits for its copy (a reconnect may take that long)
FINISHED_MAX = 1024  # settled orphans remembered at most (the oldest go first)
_REQUEUED = (False, True)  # the outcome (ack, requeue) of a job that gave its message back
_BROKER_COUNT = "x-delivery-count"  # quorum queues add it to a redelivered copy


class _Lease(Protocol):
    unsettled: dict[int, Delivery]


def identity(delivery: Delivery) -> tuple[Any, ...]:
    """What a redelivered copy shares with the delivery it copies."""
    properties = delivery.properties
    headers = properties.headers
    if headers and _BROKER_COUNT in headers:
        properties = replace(
            properties, headers={k: v for k, v in headers.items() if k != _BROKER_COUNT}
        )
    digest = hashlib.blake2b(delivery.body, digest_size=16).digest()
    return (delivery.exchange, delivery.routing_key, len(delivery.body), digest, properties)


class _Orphan:
    """One delivery whose channel died while a worker still had it."""

    __slots__ = ("lease", "tag", "identity", "copy", "outcome", "settled_at")

    def __init__(self, lease: _Lease, tag: int, delivery: Delivery) -> None:
        self.lease, self.tag, self.identity = lease, tag, identity(delivery)
        self.copy: Delivery | None = None  # the redelivered copy that adopted it
        self.outcome: tuple[bool, bool] | None = None  # (ack, requeue) once settled
        self.settled_at = 0.0


class Orphans:
    """The orphans of one consumer (see the module docstring). `take` and
    `adopt` run on the I/O thread, `settled` on a worker's thread."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.waiting = False  # any orphan kept: the one test on a redelivered message
        self._lock = _concurrency.Lock()
        self._running: list[_Orphan] = []  # a worker still has them
        self._finished: deque[_Orphan] = deque()  # settled before their copy came

    def take(self, lease: _Lease) -> None:
        """``lease``'s channel is gone: what it delivered and nobody settled
        is in the hands of workers that go on running."""
        # One critical section with `settled`: a worker settling one of
        # these right now either finds its orphan or kept it out of the
        # snapshot (see `Lease.settle`), so no orphan waits for ever.
        with self._lock:
            entries, lease.unsettled = lease.unsettled, {}
            snapshot = tuple(entries.items())  # one C call: no worker's pop interleaves
            self._running += [_Orphan(lease, tag, delivery) for tag, delivery in snapshot]
            self.waiting = bool(self._running or self._finished)

    def adopt(self, copy: Delivery) -> bool:
        """True when the redelivered ``copy`` belongs to a job this process
        runs or ran: it is settled with that job's outcome, never run."""
        key = identity(copy)
        with self._lock:
            self._expire(time.monotonic())
            orphan = next(
                (o for o in self._running if o.copy is None and o.identity == key), None
            ) or next((o for o in self._finished if o.identity == key), None)
            finished = orphan is not None and orphan.outcome is not None
            if orphan is not None and finished:
                self._finished.remove(orphan)
                if orphan.outcome == _REQUEUED:
                    orphan = None  # the job gave its message back: the copy runs
            if orphan is not None:
                orphan.copy = copy
            self.waiting = bool(self._running or self._finished)
        if orphan is None:
            return False
        log.info(
            "a redelivered message on queue %r is a job this process %s: "
            "not run again, settled with that job's outcome",
            self.queue,
            "already finished" if finished else "is still running",
        )
        if finished:
            self._apply(orphan)
        return True

    def settled(self, lease: _Lease, tag: int, ack: bool, requeue: bool) -> bool:
        """A worker settled a delivery of the dead ``lease``: pass that on to
        its copy (True when that reached a live channel), or keep it for a
        copy still to come (False: nothing reached the broker yet)."""
        with self._lock:
            orphan = next((o for o in self._running if o.lease is lease and o.tag == tag), None)
            if orphan is None:
                return False
            self._running.remove(orphan)
            orphan.outcome = (ack, requeue)
            if orphan.copy is None:
                orphan.settled_at = time.monotonic()
                self._finished.append(orphan)
                while len(self._finished) > FINISHED_MAX:
                    self._finished.popleft()
            adopted = orphan.copy is not None
            self.waiting = bool(self._running or self._finished)
        return adopted and self._apply(orphan)

    @staticmethod
    def _apply(orphan: _Orphan) -> bool:
        copy, outcome = orphan.copy, orphan.outcome
        if copy is None or outcome is None:
            return False
        ack, requeue = outcome
        return copy.ack() if ack else copy.reject(requeue=requeue)

    def _expire(self, now: float) -> None:
        finished = self._finished
        while finished and now - finished[0].settled_at > FINISHED_TTL:
            finished.popleft()
