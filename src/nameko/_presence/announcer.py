"""The process side of presence: announce this process's service instances.

How it works
------------
An `Announcer` watches the containers attached to it. Each one gets a
`StatsObserver` and an instance id. One thread (``presence``) owns a broker
connection of its own (``nameko:presence``; a service's own connection is
opened lazily, may not exist at all for an ``@http`` service, and closes
before the last goodbye could be sent on it) and every quarter second:

* announces a container that has started, or changed state (``stopping``),
  and says goodbye for one that stopped;
* every ``PRESENCE_INTERVAL`` seconds (default 10) announces them all, with
  fresh stats, so listeners can tell a live instance from a silent one;
* answers discovery requests, which the broker's dispatch thread only
  queues (it must not block).

Nothing here is on a worker's path except the observer. Announcements are
published unconfirmed and transient: a lost one is replaced by the next.
A broker that cannot be reached is logged once and tried again each
interval; it never stops the services.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nameko import __version__ as nameko_version
from nameko._broker.base import (
    Binding,
    Broker,
    BrokerError,
    Delivery,
    Exchange,
    Properties,
    Queue,
)
from nameko._concurrency import Event, Lock, start_thread
from nameko._messaging.connection import open_broker
from nameko._presence import wire
from nameko._presence.describe import describe_entrypoints
from nameko._presence.stats import StatsObserver
from nameko.constants import TRANSPORT_OPTIONS_CONFIG_KEY
from nameko.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_INTERVAL",
    "PRESENCE_CONFIG_KEY",
    "PRESENCE_INTERVAL_CONFIG_KEY",
    "Announcer",
    "container_state",
    "presence_enabled",
    "shimeji_version",
]

_log = logging.getLogger("nameko.presence")

PRESENCE_CONFIG_KEY = "PRESENCE"  # false: no announcements, no observer
PRESENCE_INTERVAL_CONFIG_KEY = "PRESENCE_INTERVAL"  # seconds between announcements
DEFAULT_INTERVAL = 10.0
_TICK = 0.25  # how soon a start or a stop is announced
_PROPERTIES = Properties(content_type=wire.CONTENT_TYPE, delivery_mode=1)


def shimeji_version() -> str:
    # shimeji's own module holds it: importlib.metadata would cost a service
    # about 2 MiB and 20 ms of start-up for one string (email, zipfile, csv...)
    from shimeji import __version__

    return __version__


def presence_enabled(config: Mapping[str, Any]) -> bool:
    return config.get(PRESENCE_CONFIG_KEY, True) not in (False, 0, "false", "off", "no")


def container_state(container: Any) -> str | None:
    """running, stopping, stopped, or None before it starts.

    Read from the container's own flags: it has no lifecycle callbacks, and
    polling them four times a second costs nothing measurable."""
    died = getattr(container, "_died", None)
    if died is not None and died.ready():
        return "stopped"
    if getattr(container, "_stopping", False) or getattr(container, "_being_killed", False):
        return "stopping"
    return "running" if container.started else None


@dataclass(eq=False)
class _Instance:
    container: Any
    observer: StatsObserver
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = 0.0  # wall clock, seconds
    started_mono: float = 0.0
    entrypoints: list[dict[str, Any]] = field(default_factory=list)
    announced: str | None = None  # the last state announced; "stopped" once said goodbye


class Announcer:
    """Announces the containers given to `attach`; `start`, then `close`."""

    def __init__(self, config: Mapping[str, Any], interval: float | None = None) -> None:
        self.config = config
        self.interval = _interval(config, interval)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.queue = f"nameko-presence.{self.host}.{self.pid}.{uuid.uuid4().hex[:8]}"
        self._instances: list[_Instance] = []
        self._lock = Lock()
        self._discoveries: list[str] = []
        self._wake = Event()
        self._closing = Event()
        self._broker: Broker | None = None
        self._thread: Any = None
        self._warned = False
        self._attempts = 0

    def attach(self, container: Any) -> str:
        """Watch ``container`` (before it starts: its observer sees every worker);
        returns its instance id."""
        instance = _Instance(container, StatsObserver())
        instance.entrypoints = describe_entrypoints(container)
        container.worker_observers.append(instance.observer)
        with self._lock:
            self._instances.append(instance)
        return instance.id

    def start(self) -> None:
        self._thread = start_thread(self._run, "presence")

    def close(self, timeout: float = 5.0) -> None:
        """Say goodbye for every instance still announced, then disconnect."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the presence thread ---------------------------------------------------

    def _run(self) -> None:
        next_round = 0.0
        while not self._closing.is_set():
            if self._broker is None and not self._connect():
                self._closing.wait(self.interval)
                continue
            self._wake.clear()  # before the work: a request arriving during it wakes the next wait
            now = time.monotonic()
            periodic = now >= next_round
            if periodic:
                next_round = now + self.interval
            self._announce_changes(periodic)
            self._answer_discoveries()
            self._wake.wait(_TICK)
        self._goodbye()

    def _connect(self) -> bool:
        """One attempt, no retries of its own: the services' connection is the
        one that reports (and retries) a broker that is down or refuses us;
        the first failure may be that same one, so only later ones warn."""
        self._attempts += 1
        try:
            broker = open_broker(_single_attempt(self.config), "nameko:presence")
        except Exception as exc:  # whatever it is, the services must run on
            self._failed(exc)
            return False
        try:
            broker.consume(self.queue, self._on_discover, no_ack=True, topology=self._topology())
        except Exception as exc:
            broker.close()
            self._failed(exc)
            return False
        self._broker = broker
        return True

    def _failed(self, exc: Exception) -> None:
        if self._attempts > 1 and not self._warned:
            _log.warning("presence: cannot announce the services (%s); will retry", exc)
            self._warned = True
        else:
            _log.debug("presence: not connected (%s)", exc)

    def _topology(self) -> list[Any]:
        return [
            Exchange(wire.EXCHANGE, type="topic", durable=True),
            Queue(self.queue, durable=False, exclusive=True, auto_delete=True),
            Binding(self.queue, wire.EXCHANGE, wire.DISCOVER_ROUTING_KEY),
        ]

    def _on_discover(self, delivery: Delivery) -> None:  # the broker's dispatch thread
        reply_to = delivery.properties.reply_to
        if reply_to:
            with self._lock:
                self._discoveries.append(reply_to)
            self._wake.set()

    def _announce_changes(self, periodic: bool) -> None:
        for instance in self._snapshot():
            state = container_state(instance.container)
            if state is None or instance.announced == "stopped":
                continue
            if state == "stopped" and instance.announced is None:
                continue  # never announced: nothing to take back
            if periodic or state != instance.announced:
                self._send(instance, state)

    def _answer_discoveries(self) -> None:
        with self._lock:
            reply_tos, self._discoveries = self._discoveries, []
        for reply_to in dict.fromkeys(reply_tos):  # several asks in one tick: one answer
            for instance in self._snapshot():
                state = container_state(instance.container)
                if state in ("running", "stopping"):
                    self._publish("", reply_to, self.message(instance, state))

    def _goodbye(self) -> None:
        for instance in self._snapshot():
            if instance.announced not in (None, "stopped"):
                self._send(instance, "stopped")
        broker, self._broker = self._broker, None
        if broker is not None:
            broker.close()

    def _send(self, instance: _Instance, state: str) -> None:
        routing_key = wire.instance_routing_key(instance.container.service_name)
        if self._publish(wire.EXCHANGE, routing_key, self.message(instance, state)):
            instance.announced = state

    def _publish(self, exchange: str, routing_key: str, message: dict[str, Any]) -> bool:
        broker = self._broker
        if broker is None:
            return False
        try:
            broker.publish(exchange, routing_key, wire.encode(message), _PROPERTIES, confirm=False)
        except BrokerError as exc:  # reconnecting: the next round says it again
            _log.debug("presence: not announced (%s)", exc)
            return False
        return True

    def _snapshot(self) -> list[_Instance]:
        with self._lock:
            return list(self._instances)

    # -- the message -------------------------------------------------------------

    def message(self, instance: _Instance, state: str) -> dict[str, Any]:
        container = instance.container
        if not instance.started_at:
            instance.started_at, instance.started_mono = time.time(), time.monotonic()
        stats = instance.observer.snapshot()
        entrypoints = [{**ep, "stats": stats.get(ep["key"])} for ep in instance.entrypoints]
        return {
            "kind": wire.BYE if state == "stopped" else wire.ANNOUNCE,
            "service": container.service_name,
            "instance": instance.id,
            "host": self.host,
            "pid": self.pid,
            "version": shimeji_version(),
            "nameko": nameko_version,
            "started": round(instance.started_at, 3),
            "uptime": round(time.monotonic() - instance.started_mono, 3),
            "sent": round(time.time(), 3),
            "interval": self.interval,
            "state": state,
            "max_workers": container.max_workers,
            "in_flight": instance.observer.in_flight(),
            "entrypoints": entrypoints,
        }


def _single_attempt(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with one connection attempt (reconnects after a first
    success still go on for ever, as for every connection)."""
    options = dict(config.get(TRANSPORT_OPTIONS_CONFIG_KEY) or {})
    options["max_retries"] = 0
    return {**config, TRANSPORT_OPTIONS_CONFIG_KEY: options}


def _interval(config: Mapping[str, Any], given: float | None) -> float:
    value = given if given is not None else config.get(PRESENCE_INTERVAL_CONFIG_KEY)
    if value is None:
        return DEFAULT_INTERVAL
    try:
        interval = float(value)
    except (TypeError, ValueError):
        interval = 0.0
    if interval <= 0:
        raise ConfigurationError(f"{PRESENCE_INTERVAL_CONFIG_KEY} must be a positive number")
    return interval
