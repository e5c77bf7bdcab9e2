"""What the site hands to the threads that serve requests, and small socket helpers."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nameko._web.addresses import BindAddress
from nameko._web.http11 import simple_response

__all__ = [
    "Reply",
    "Takeover",
    "close_socket",
    "end_taken",
    "listen",
    "refuse",
    "shutdown",
    "unavailable",
]

_log = logging.getLogger("nameko.web.server")


@dataclass
class Reply:
    data: bytes
    keep_alive: bool
    access: tuple[Any, ...] | None = None  # access-log arguments, logged by the I/O thread


@dataclass(eq=False)
class Takeover:
    """A connection that asked to upgrade, handed to its request thread.

    The app that upgrades it sets ``accepted`` and owns the socket (blocking)
    until `close`; ``on_drain``, if set, is how the site asks it to go away
    when the server stops.
    """

    sock: socket.socket
    trailing: bytes
    peer: Any
    _release: Callable[[Takeover], None]
    peer_key: Any = None  # what the site's per-peer share counts it against
    accepted: bool = False
    on_drain: Callable[[], None] | None = None

    def close(self) -> None:
        self._release(self)


def listen(address: BindAddress, reuse_port: bool = False) -> socket.socket:
    host = address.address or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, address.port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def unavailable(why: str) -> bytes:
    return simple_response(503, "Service Unavailable", why, ("Retry-After: 1",))


def refuse(sock: socket.socket, why: str) -> None:
    try:
        sock.send(unavailable(why))
    except OSError:
        pass
    close_socket(sock)


def end_taken(takeover: Takeover) -> None:
    if takeover.on_drain is None:
        shutdown(takeover.sock)
        return
    try:
        takeover.on_drain()
    except Exception:
        _log.warning("closing an upgraded connection failed", exc_info=True)
        shutdown(takeover.sock)


def shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def close_socket(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
