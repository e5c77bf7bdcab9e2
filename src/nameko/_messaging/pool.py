"""The process-wide pool of publishing connections behind nameko's
``nameko.amqp.get_connection`` and ``get_producer`` (SPEC 1.8).

Publishing without a service's own connection (the core `Publisher` given
no ``broker``, e.g. the standalone event dispatcher) borrows a connection
for the call, as nameko borrows from kombu's global pools; this module keeps
up to `MAX_IDLE_CONNECTIONS` idle ones per (uri, options) for reuse. A
pooled connection that is lost reconnects ``max_retries`` times (as a first
connection does), then closes itself and leaves the pool: an idle one would
otherwise retry forever after, say, its vhost was deleted.

`get_connection` and `get_producer` are context managers that yield a
shimeji broker connection (`nameko._broker.base.Broker`) from this pool, not
kombu ``Connection``/``Producer`` objects. Code that only passes them to
nameko's own helpers keeps working; code that calls kombu methods on them
does not.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from nameko._broker import connect
from nameko._broker.base import Broker
from nameko._concurrency import Lock
from nameko._urls import join_urls
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS

__all__ = ["MAX_IDLE_CONNECTIONS", "close_idle", "get_connection", "get_producer"]

MAX_IDLE_CONNECTIONS = 10  # per (uri, options); more are closed on release

_idle: dict[tuple[Any, ...], list[Broker]] = {}
_idle_lock = Lock()


@contextmanager
def get_connection(
    amqp_uri: str | Sequence[str],
    ssl: Any = None,
    login_method: str | None = None,
    transport_options: Mapping[str, Any] | None = None,
) -> Iterator[Broker]:
    """A broker connection from the process-wide pool (a shimeji `Broker`,
    not a kombu ``Connection``); it goes back to the pool afterwards."""
    options = {
        "ssl": ssl,
        "login_method": login_method,
        "transport_options": dict(transport_options or DEFAULT_TRANSPORT_OPTIONS),
    }
    amqp_uri = join_urls(amqp_uri)  # a list of nodes works too (and is hashable so)
    key = (amqp_uri, repr(sorted(options.items())))
    broker = _take_idle(key) or connect(
        amqp_uri, connection_name="nameko:publisher", reconnect_forever=False, **options
    )
    try:
        yield broker
    finally:
        _give_back(key, broker)


@contextmanager
def get_producer(
    amqp_uri: str | Sequence[str],
    confirms: bool = True,
    ssl: Any = None,
    login_method: str | None = None,
    transport_options: Mapping[str, Any] | None = None,
) -> Iterator[Broker]:
    """Like `get_connection`: our broker takes ``confirm`` per publish, so the
    connection is the producer. ``confirms`` is accepted for compatibility."""
    with get_connection(amqp_uri, ssl, login_method, transport_options) as broker:
        yield broker


def _take_idle(key: tuple[Any, ...]) -> Broker | None:
    with _idle_lock:
        pool = _idle.get(key, [])
        while pool:
            broker = pool.pop()
            if broker.is_connected:
                return broker
            broker.close()
    return None


def _give_back(key: tuple[Any, ...], broker: Broker) -> None:
    with _idle_lock:
        pool = _idle.setdefault(key, [])
        if broker.is_connected and len(pool) < MAX_IDLE_CONNECTIONS:
            pool.append(broker)
            return
    broker.close()


@atexit.register
def close_idle(amqp_uri: str | Sequence[str] | None = None) -> None:
    """Close the idle connections (to ``amqp_uri``, or all). Runs at exit, so
    the broker sees a clean close rather than a dropped socket; tests call it
    before taking a broker away, so no idle connection retries it forever."""
    with _idle_lock:
        keys = [key for key in _idle if amqp_uri is None or key[0] == join_urls(amqp_uri)]
        brokers = [broker for key in keys for broker in _idle.pop(key)]
    for broker in brokers:
        broker.close()
