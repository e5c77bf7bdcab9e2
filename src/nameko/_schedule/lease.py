"""Leader election for one schedule, on the broker the service already uses.

Every instance of the service consumes ``schedule-<service>.<key>`` (the key
is the method's name unless given), a durable queue declared with
``x-single-active-consumer``, with a prefetch of 1, and publishes one lease
message into it when it starts and after every reconnect. RabbitMQ delivers
only to the active consumer, which keeps the message unacked: **the instance
holding a lease message is the leader**. When the leader's connection dies
(SIGKILL, a lost network), RabbitMQ requeues the message and makes the next
consumer active, which receives it: that is the fail-over, with no timer and
no extra infrastructure. A graceful stop cancels the consumer and gives the
message back at once.

``x-max-length: 1`` counts only ready messages, so the leases that every
start adds leave at most one spare waiting beside the held one; the spare
is what keeps a lease in the queue if a held one is ever lost. The leader
never acks. ``x-expires`` removes the queue an hour after the last instance
of the service went away.

Why a held message and not something else (D28): AMQP 0-9-1 does not tell a
consumer that it became the single active one; it only starts receiving.
A lease message turns that into an event the instance sees, and its loss
(the channel closing) is seen through `Delivery.held` without a round trip.
"""

from __future__ import annotations

import logging
import time

from nameko._broker.base import Consumer, Delivery, Properties, Queue
from nameko._concurrency import Lock
from nameko._messaging.connection import BrokerConnection
from nameko._runtime.extensions import Extension

__all__ = ["LEASE_ARGUMENTS", "Leadership", "lease_queue"]

_log = logging.getLogger("nameko.schedule")

LEASE_ARGUMENTS = {
    "x-single-active-consumer": True,
    "x-max-length": 1,  # ready messages only: one spare beside the held lease
    "x-expires": 3_600_000,  # an hour after the service's last instance went
}
_LEASE = Properties(delivery_mode=2, app_id="shimeji-schedule")


def lease_queue(service_name: str, key: str) -> str:
    return f"schedule-{service_name}.{key}"


def _give_back(token: Delivery) -> None:
    """Requeue a lease we hold (the next instance gets it at once); settle
    one whose channel or queue is gone with an ack, the one harmless
    settle there (RabbitMQ 3.10 resets the channel on a requeue of a
    deleted queue's message: observed, tests/contract)."""
    if token.held:
        token.reject(requeue=True)
    else:
        token.ack()


class Leadership(Extension):
    """Whether this instance leads one schedule; a sub-extension of the
    schedule's entrypoint, which sets `queue` in its ``setup``."""

    connection = BrokerConnection()

    def __init__(self) -> None:
        self.queue = ""
        self._lock = Lock()
        self._token: Delivery | None = None
        self._since = 0.0  # wall-clock time the held lease arrived
        self._leading = False  # what was last logged
        self._consumer: Consumer | None = None
        self._stopped = False

    def setup(self) -> None:
        self._stopped = False

    def start(self) -> None:
        if not self.queue:
            return  # its entrypoint was removed (`restrict_entrypoints`) before setup
        self.connection.register_provider(self)
        broker = self.connection.broker
        topology = [Queue(self.queue, durable=True, arguments=LEASE_ARGUMENTS)]
        self._consumer = broker.consume(self.queue, self._on_lease, prefetch=1, topology=topology)
        broker.add_reconnect_listener(self._add_spare_unconfirmed)
        broker.publish("", self.queue, b"", _LEASE)

    def _add_spare_unconfirmed(self) -> None:
        # on the dispatch thread, where a confirmed publish is not allowed
        if not self._stopped:
            self.connection.broker.publish("", self.queue, b"", _LEASE, confirm=False)

    def _on_lease(self, delivery: Delivery) -> None:
        with self._lock:
            if self._stopped:
                delivery.reject(requeue=True)
                return
            previous, self._token, self._since = self._token, delivery, time.time()
        if previous is not None:
            _give_back(previous)
        _log.info("%s: this instance now leads (holds the lease)", self.queue)

    def leads_at(self, due: float) -> bool:
        """Whether this instance fires the tick due at wall-clock time
        ``due``: it holds a lease, and held it before the tick was due (a
        new leader never fires a tick its predecessor may have fired)."""
        with self._lock:
            token, since = self._token, self._since
        leading = token is not None and token.held
        if token is not None and not leading:
            with self._lock:
                if self._token is token:
                    self._token = None
            _give_back(token)
        if leading != self._leading:
            self._leading = leading
            if not leading:
                _log.info("%s: this instance lost the lease", self.queue)
        return leading and since < due

    def stop(self) -> None:
        """Give the lease back at once (the next instance takes over)."""
        self._release(close=False)

    def kill(self) -> None:
        self._release(close=True)

    def _release(self, close: bool) -> None:
        with self._lock:
            self._stopped = True
            token, self._token = self._token, None
        consumer = self._consumer
        if consumer is not None and close:
            consumer.close()  # the broker requeues the lease
        elif consumer is not None:
            consumer.cancel()  # the lease stays ours until given back below
        if token is not None:
            _give_back(token)
        self.connection.unregister_provider(self)

    def __repr__(self) -> str:
        return f"<Leadership {self.queue!r} at 0x{id(self):x}>"
