"""What nameko 2.14 code reads below a standalone client's reply listener.

How it works
------------
In nameko 2.14 a standalone client's reply listener had a ``queue_consumer``
holding a kombu connection that the *caller's* thread drained, and a
``replies`` dict of replies read but not yet collected. Pool libraries
(django-nameko's heartbeat thread) keep idle clients alive by calling
``queue_consumer.connection.drain_events(timeout=...)``, then
``heartbeat_check()``, and prune stale ``replies``.

Here the connection's own I/O thread reads every frame and sends the
heartbeats, and replies go straight to the waiting call (a reply nobody
waits for is dropped), so the view only has to tell the truth about the
connection: both calls raise the builtin `ConnectionError` (an `IOError`,
what such code catches to replace a client) once the connection is down,
``drain_events`` otherwise raises `socket.timeout` (`TimeoutError`) at once (nothing is ever
left for the caller to drain), and ``replies`` is always empty.
"""

from __future__ import annotations

from typing import Any

from nameko._broker.base import Broker

__all__ = ["ConnectionView", "QueueConsumerView"]


class ConnectionView:
    """``drain_events`` and ``heartbeat_check`` of a kombu connection, read-only."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    @property
    def connected(self) -> bool:
        return self._broker.is_connected

    def heartbeat_check(self, rate: int = 2) -> None:
        """Raise `ConnectionError` if the connection is down (our I/O thread
        sends and checks the heartbeats themselves)."""
        if not self._broker.is_alive:
            raise ConnectionError("the client's broker connection is closed")
        if not self._broker.is_connected:
            raise ConnectionError("the client's broker connection is lost (reconnecting)")

    def drain_events(self, timeout: float | None = None) -> None:
        """Nothing to drain: raise `socket.timeout`, or `ConnectionError` if down."""
        self.heartbeat_check()
        raise TimeoutError("no events for the caller: the I/O thread handles them")


class QueueConsumerView:
    """A reply listener's ``queue_consumer``: ``connection`` and ``replies``."""

    def __init__(self, broker: Broker) -> None:
        self.connection = ConnectionView(broker)
        #: replies received but not collected: none are ever kept
        self.replies: dict[str, Any] = {}
