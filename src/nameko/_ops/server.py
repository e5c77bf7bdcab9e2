"""A small HTTP/1.0 server for probes and scrapes (D26, D32).

Not the ``@http`` server (`nameko._web`): the operations endpoint must keep
answering when the services' own HTTP is saturated or draining, has a
handful of requests a minute, and should not make a service that has no
``@http`` entrypoint load werkzeug.

How it works: one thread (``ops-http``) runs a `selectors` loop over the
listening socket, every client socket (all non-blocking) and a wake-up
pipe. It never waits on one client: a client's bytes are appended to its
buffer as they come, and once the head of a request (up to the blank line)
is in, the route is called and the response is queued and written as the
socket accepts it. Each connection has one deadline, `REQUEST_DEADLINE`
seconds after it was accepted, for the whole request and response; the
loop sleeps until the nearest deadline and drops what is past it, so a
client trickling a byte at a time gets no longer than one that is silent.
At most `MAX_CONNECTIONS` are open: a new one beyond that evicts the one
open longest, so a crowd of idle connections cannot shut a probe out. The
listen backlog is `BACKLOG`. Routes run on the loop thread: they are quick
(counters and states, no I/O).
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import socket
import time
from collections.abc import Callable

from nameko._concurrency import Event, start_thread

__all__ = [
    "BACKLOG",
    "MAX_CONNECTIONS",
    "MAX_REQUEST_HEAD",
    "REQUEST_DEADLINE",
    "REQUEST_TIMEOUT",
    "OpsServer",
    "Response",
]

_log = logging.getLogger("nameko.ops")

REQUEST_DEADLINE = 3.0  # seconds from accept to the last byte of the response
REQUEST_TIMEOUT = REQUEST_DEADLINE  # the name this module had before
MAX_CONNECTIONS = 64  # open at once; a newer one evicts the oldest
MAX_REQUEST_HEAD = 8192  # bytes of request line and headers
BACKLOG = 128

Response = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Response]

_HEAD_END = re.compile(rb"\r?\n\r?\n")  # the blank line after the headers

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Client:
    __slots__ = ("sock", "peer", "deadline", "inbox", "outbox", "replied")

    def __init__(self, sock: socket.socket, peer: object, deadline: float) -> None:
        self.sock, self.peer, self.deadline = sock, peer, deadline
        self.inbox = b""
        self.outbox = memoryview(b"")
        self.replied = False


class OpsServer:
    """Serves ``routes`` (path -> function) on ``host:port`` until `close`."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # OSError if the address is taken; SO_REUSEADDR as http.server set it
        self._listener = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self._listener.setblocking(False)
        self.routes = routes
        self._clients: dict[socket.socket, _Client] = {}  # in accept order: oldest first
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._closing = False
        self._stopped = Event()
        start_thread(self._serve, "ops-http")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def connections(self) -> int:
        """Client connections open right now."""
        return len(self._clients)

    def _serve(self) -> None:
        try:
            while not self._closing:
                for key, events in self._selector.select(self._timeout()):
                    self._dispatch(key, events)
                self._expire(time.monotonic())
        except Exception:
            _log.exception("the ops endpoint stopped")
        finally:
            for client in list(self._clients.values()):
                self._drop(client)
            self._stopped.set()

    def _timeout(self) -> float | None:
        """Until the nearest deadline; no wake-ups at all while nobody is connected."""
        if not self._clients:
            return None
        nearest = min(client.deadline for client in self._clients.values())
        return max(0.0, nearest - time.monotonic())

    def _dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        client = key.data
        if client is None:
            if key.fileobj is self._listener:
                self._accept()
            else:
                os.read(self._wake_r, 64)  # `close` woke us
            return
        if events & selectors.EVENT_READ and self._open(client):
            self._read(client)
        if events & selectors.EVENT_WRITE and self._open(client):
            self._write(client)

    def _open(self, client: _Client) -> bool:
        """Not dropped (earlier in this round, to make room or past its deadline)."""
        return self._clients.get(client.sock) is client

    def _accept(self) -> None:
        for _ in range(BACKLOG):  # drain what is waiting, a bounded amount per round
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, or a peer that reset already
                _log.debug("ops endpoint: accept failed", exc_info=True)
                return
            if len(self._clients) >= MAX_CONNECTIONS:
                self._drop(next(iter(self._clients.values())))  # the one open longest
            sock.setblocking(False)
            client = _Client(sock, peer, time.monotonic() + REQUEST_DEADLINE)
            self._clients[sock] = client
            self._selector.register(sock, selectors.EVENT_READ, client)
            # a request already here is answered now, before a later arrival could evict it
            self._read(client)

    def _read(self, client: _Client) -> None:
        try:
            chunk = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        if client.replied:  # surplus or a half-close: the response is still going out
            if not chunk:
                self._selector.modify(client.sock, selectors.EVENT_WRITE, client)
            return
        if not chunk:
            self._drop(client)
            return
        client.inbox += chunk
        end = _HEAD_END.search(client.inbox)
        if end is not None:
            self._reply(client, *self._answer(client.inbox[: end.start()]))
        elif len(client.inbox) > MAX_REQUEST_HEAD:
            self._reply(client, 431, "text/plain", b"request head too large\n")

    def _answer(self, head: bytes) -> tuple[int, str, bytes, bool]:
        """Status, content type, body, and whether the body is sent (not for HEAD)."""
        parts = head.split(b"\n", 1)[0].strip().split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            return 400, "text/plain", b"bad request\n", True
        method, target = parts[0], parts[1].decode("latin-1")
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n", True
        route = self.routes.get(target.split("?", 1)[0])
        if route is None:
            return 404, "text/plain", b"not found: /healthz /readyz /metrics\n", method == b"GET"
        try:
            status, kind, body = route()
        except Exception:
            _log.exception("the ops endpoint failed on %s", target)
            status, kind, body = 500, "text/plain", b"internal error (logged)\n"
        return status, kind, body, method == b"GET"

    def _reply(
        self, client: _Client, status: int, kind: str, body: bytes, with_body: bool = True
    ) -> None:
        head = (
            f"HTTP/1.0 {status} {_REASONS.get(status, '')}\r\n"
            f"Server: shimeji-ops\r\nDate: {_http_date()}\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        client.replied, client.inbox = True, b""
        client.outbox = memoryview(head + body if with_body else head)
        _log.debug("ops %s %s", client.peer, status)
        self._write(client)
        if self._open(client) and client.outbox:
            self._selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _write(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.outbox = client.outbox[sent:]
        if not client.outbox:
            self._drop(client, graceful=True)

    def _expire(self, now: float) -> None:
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            _log.debug("ops endpoint: %s did not finish within %ss", client.peer, REQUEST_DEADLINE)
            self._drop(client)

    def _drop(self, client: _Client, graceful: bool = False) -> None:
        self._clients.pop(client.sock, None)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        if graceful:
            _finish(client.sock)
        client.sock.close()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True  # the loop ends and drops every client
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if not self._stopped.wait(5):
            _log.warning("the ops endpoint did not stop within 5s")
        self._selector.close()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _finish(sock: socket.socket) -> None:
    """End our half first and take what the client sent past its request, so
    closing does not reset the connection under the response it is reading."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)
    except OSError:
        pass


def _http_date() -> str:
    """The Date header's value, e.g. ``Tue, 08 Dec 2026 00:39:03 GMT``: written
    here since ``email.utils`` would load the email package into every service
    (English names, whatever the locale)."""
    now = time.gmtime()
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[now.tm_wday]
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{day}, {now.tm_mday:02d} {month[now.tm_mon - 1]} {now.tm_year} " + time.strftime(
        "%H:%M:%S GMT", now
    )
