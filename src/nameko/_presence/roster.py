"""The listening side of presence: who is there, as announcements say.

A `Roster` owns a broker connection and an exclusive queue bound to every
announcement; `discover` asks every instance to announce itself at once.
It keeps the latest announcement of each instance and a short history of
their stats (for rates), forgets an instance on its goodbye, and marks it
``silent`` when nothing was heard from it for three of its intervals (a
process that was SIGKILLed says no goodbye).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nameko._broker.base import Binding, Broker, Delivery, Exchange, Properties, Queue
from nameko._concurrency import Condition
from nameko._messaging.connection import open_broker
from nameko._presence import wire

__all__ = ["Roster", "Seen"]

SILENT_AFTER = 3  # intervals without news
FORGET_AFTER = 10  # intervals without news: gone from the list
HISTORY = 30  # announcements kept per instance, for rates


@dataclass
class Seen:
    """The latest announcement of one instance, and when it came."""

    message: dict[str, Any]
    received: float  # time.monotonic()
    history: deque[tuple[float, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )  # (uptime, stats by entrypoint key)

    @property
    def silent_for(self) -> float:
        return time.monotonic() - self.received

    def is_silent(self, period: float | None = None) -> bool:
        expected = self.message.get("interval") or 10.0
        if period is not None:
            expected = min(expected, period)
        return self.silent_for > SILENT_AFTER * expected


class Roster:
    """Announcements of the cluster's instances; thread-safe reads."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.queue = f"nameko-presence.listener.{uuid.uuid4().hex[:12]}"
        self._seen: dict[str, Seen] = {}
        self._goodbyes: set[str] = set()  # services whose instances said goodbye
        self._changed = Condition()
        self._broker: Broker | None = None

    def start(self) -> Roster:
        broker = open_broker(self.config, "nameko:presence-listener")
        try:
            broker.consume(self.queue, self._on_message, no_ack=True, topology=self._topology())
        except BaseException:
            broker.close()
            raise
        self._broker = broker
        return self

    def _topology(self) -> list[Any]:
        return [
            Exchange(wire.EXCHANGE, type="topic", durable=True),
            Queue(self.queue, durable=False, exclusive=True, auto_delete=True),
            Binding(self.queue, wire.EXCHANGE, wire.INSTANCE_ROUTING_PATTERN),
        ]

    def discover(self) -> None:
        """Ask every instance to announce itself now (answers come to our queue)."""
        assert self._broker is not None, "start the roster first"
        properties = Properties(
            content_type=wire.CONTENT_TYPE, delivery_mode=1, reply_to=self.queue, type="discover"
        )
        body = wire.encode({"kind": wire.DISCOVER, "service": "", "instance": self.queue})
        self._broker.publish(
            wire.EXCHANGE, wire.DISCOVER_ROUTING_KEY, body, properties, confirm=False
        )

    def close(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            broker.close()

    def __enter__(self) -> Roster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what was heard ----------------------------------------------------------

    def _on_message(self, delivery: Delivery) -> None:  # the broker's dispatch thread
        message = wire.decode(delivery.body)
        if message is None or message.get("kind") not in (wire.ANNOUNCE, wire.BYE):
            return
        with self._changed:
            if message["kind"] == wire.BYE:
                self._seen.pop(message["instance"], None)
                self._goodbyes.add(message["service"])
            else:
                self._record(message)
            self._changed.notify_all()

    def _record(self, message: dict[str, Any]) -> None:
        seen = self._seen.get(message["instance"])
        if seen is None:
            seen = self._seen[message["instance"]] = Seen(message, time.monotonic())
        seen.message, seen.received = message, time.monotonic()
        if message.get("state") == "running":
            self._goodbyes.discard(message["service"])
        stats = {ep.get("key"): ep.get("stats") for ep in message.get("entrypoints") or ()}
        seen.history.append((float(message.get("uptime") or 0.0), stats))

    def instances(self) -> list[Seen]:
        """What is known now; instances without news for FORGET_AFTER of their
        intervals are dropped (a SIGKILLed process never says goodbye)."""
        with self._changed:
            for key, seen in list(self._seen.items()):
                if seen.silent_for > FORGET_AFTER * (seen.message.get("interval") or 10.0):
                    del self._seen[key]
            return sorted(
                self._seen.values(),
                key=lambda s: (
                    s.message["service"],
                    s.message.get("host", ""),
                    s.message.get("pid", 0),
                ),
            )

    def wait_for(self, predicate: Callable[[list[Seen]], bool], timeout: float) -> bool:
        """Wait until ``predicate(instances)`` holds; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._seen.values())):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def stopped(self, service: str) -> bool:
        """True when instances of ``service`` said goodbye and none has
        announced it is running since (those left, if any, are stopping)."""
        with self._changed:
            if service not in self._goodbyes:
                return False
            return not any(
                seen.message["service"] == service and seen.message.get("state") == "running"
                for seen in self._seen.values()
            )

    def services(self) -> dict[str, list[dict[str, Any]]]:
        """Service name -> the entrypoints its instances announce (merged)."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for seen in self.instances():
            entrypoints = found.setdefault(seen.message["service"], {})
            for ep in seen.message.get("entrypoints") or ():
                entrypoints.setdefault(ep.get("key", ""), ep)
        return {name: list(eps.values()) for name, eps in found.items()}
