"""One listening address: its socket, its connections and the thread that owns them.

How it works
------------
A `Site` owns one listening socket and every connection accepted on it, all
driven by a single I/O thread (``web-io-<port>``) around a `selectors`
loop. That thread only moves bytes: it reads, feeds each connection's
`RequestParser`, writes responses and enforces the timeouts, the
connection cap and each peer's share of it (counted per `peer_key`). It
never runs application code, so a slow handler cannot stall other clients
and a slow client cannot hold a worker. Lines a client can provoke (bad
requests, timeouts, refusals) go through a `RateLimitedLog`.

A parsed request goes to the site's request pool (``web-request-<port>-N``
threads, which exit after ``WEB_THREAD_IDLE_TIMEOUT`` idle), which runs
``handler(request, peer)`` and posts the response back through a completion
queue and a socketpair wake-up. Requests on one
connection are answered in order: the next pipelined request is dispatched
once the previous response is queued for writing.

A request that asks to upgrade (WebSocket) leaves the loop: the socket goes
to its request thread in blocking mode, as `Takeover`, and that thread owns
it from then on; the site only remembers it so it can be shut at close.

`drain` is the graceful stop: the listener closes first, idle connections
are closed, requests in flight finish and their responses are written, new
requests on open connections get 503 and ``Connection: close``.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from nameko._concurrency import Event, Lock, WorkerPool, start_thread
from nameko._log_limits import RateLimitedLog
from nameko._redaction import redact_target
from nameko._web.addresses import BindAddress
from nameko._web.connections import (
    Reply,
    Takeover,
    close_socket,
    end_taken,
    listen,
    refuse,
    shutdown,
    unavailable,
)
from nameko._web.http11 import HttpError, HttpRequest, RequestParser, simple_response
from nameko._web.limits import WebLimits

__all__ = ["Reply", "Site", "Takeover"]

_log = logging.getLogger("nameko.web.server")

_READ_SIZE = 65536
_SWEEP_INTERVAL = 0.25  # how often timeouts are checked
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_V4_MAPPED = bytes(10) + b"\xff\xff"
NOISY_LOG_PERIOD = 10.0  # seconds: lines a client can cause, one per kind per period


# handler(request, peer, takeover, target) -> reply, on the thread `pick` chose
Handler = Callable[[HttpRequest, Any, "Takeover | None", Any], "Reply | None"]
# pick(request) -> (submit, target): where to run a request; (None, None) for our pool
Picker = Callable[[HttpRequest], tuple["Callable[[Callable[[], None]], bool] | None", Any]]


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    peer: Any
    parser: RequestParser
    peer_key: Any = None  # what the per-peer share counts (see `peer_key`)
    queued: deque[HttpRequest | None] = field(default_factory=deque)  # None: then `error`
    out: bytearray = field(default_factory=bytearray)
    busy: bool = False  # a request of this connection is with a handler
    close_after_write: bool = False
    eof: bool = False  # the client half-closed: answer what it sent, then close
    closed: bool = False
    continued: bool = False  # `100 Continue` sent for the request being read
    events: int = 0  # what the selector watches for
    phase: str = "idle"  # idle | headers | body | writing | busy
    deadline: float | None = None
    error: HttpError | None = None  # a parse error to answer after the queued requests


class _Job:
    """A request for a worker pool; `cancel` answers it if the pool drops it unrun."""

    __slots__ = ("_run", "cancel")

    def __init__(self, run: Callable[[], None], cancel: Callable[[], None]) -> None:
        self._run = run
        self.cancel = cancel

    def __call__(self) -> None:
        self._run()


def peer_key(peer: Any) -> Any:
    """The client a connection counts against: its IPv4 address, or its IPv6 /64.

    One IPv6 host usually holds a whole /64, so counting single addresses
    would let it take any number of shares. (`inet_pton`, not `ipaddress`:
    this runs for every connection accepted, and is 15 times cheaper.)
    """
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    if not isinstance(host, str) or ":" not in host:
        return host
    try:
        packed = socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
    except (OSError, ValueError):
        return host
    if packed[:12] == _V4_MAPPED:  # an IPv4 client of a dual-stack listener
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"


class Site:
    def __init__(
        self, address: BindAddress, limits: WebLimits, handler: Handler, pick: Picker
    ) -> None:
        self.address = address
        self.limits = limits
        self._handler = handler
        self._pick = pick
        self._listener = listen(address, bool(limits.reuse_port))
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._conns: dict[socket.socket, _Conn] = {}
        self._taken: set[Takeover] = set()
        self._taken_lock = Lock()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_pending = False
        self._pool = WorkerPool(
            max(1, limits.max_connections),
            name=f"web-request-{self.port}",
            idle_timeout=limits.thread_idle_timeout,
        )
        self._peers: dict[Any, int] = {}  # connections (and upgraded ones) per peer key
        self._draining = False
        self._listener_closed = Event()
        self._drained = Event()
        self._running = True
        self._next_sweep = 0.0
        self._noisy = RateLimitedLog(_log, NOISY_LOG_PERIOD)
        self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread: Any = None

    def start(self) -> None:
        """Start serving (separate from construction, so the owner is complete first)."""
        self._thread = start_thread(self._loop, f"web-io-{self.port}")

    # -- called from other threads --------------------------------------------

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the I/O thread."""
        self._calls.put(fn)
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_w.send(b"x")
            except OSError:  # closed: the loop is gone
                pass

    def drain(self, timeout: float) -> bool:
        """Graceful stop; True if every request in flight was answered in time."""
        self.call_soon(self._begin_drain)
        drained = self._drained.wait(timeout)
        self.call_soon(self._shut)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.close()
        return drained

    def stop_accepting(self) -> None:
        """Close the listener and idle connections; answer what is in flight.

        Returns once the listener is closed, so the address can be bound again.
        """
        self.call_soon(self._begin_drain)
        self._listener_closed.wait(5)

    # -- the loop -------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while self._running:
                for key, mask in self._selector.select(_SWEEP_INTERVAL):
                    self._on_event(key.data, mask)
                now = time.monotonic()
                if now >= self._next_sweep:
                    self._next_sweep = now + _SWEEP_INTERVAL
                    self._sweep(now)
                    self._noisy.flush()
        except Exception:  # a bug here would silently stop the server: say so loudly
            _log.critical("web server I/O loop on port %s crashed", self.port, exc_info=True)
            self._running = False
            self._drained.set()
        finally:
            self._close_everything()

    def _on_event(self, data: Any, mask: int) -> None:
        if data == "listener":
            self._accept()
        elif data == "wake":
            self._run_calls()
        elif not data.closed:  # a stale event of a closed or handed-over connection
            if mask & selectors.EVENT_READ:
                self._on_readable(data)
            if mask & selectors.EVENT_WRITE and not data.closed:
                self._flush(data)

    def _run_calls(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        self._wake_pending = False
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            fn()

    # -- accepting ------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(64):  # a bounded batch, so a flood can't starve the rest
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: log, keep serving
                self._noisy.log(  # out of descriptors lasts: one line per period
                    logging.WARNING, "failed accept", "accept failed on port %s: %s", self.port, exc
                )
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            key = peer_key(peer)
            if not self._admit(sock, peer, key):
                continue
            conn = _Conn(sock, peer, RequestParser(self.limits), key)
            self._conns[sock] = conn
            self._peers[key] = self._peers.get(key, 0) + 1
            self._set_idle(conn, time.monotonic())
            self._watch(conn, selectors.EVENT_READ)

    def _admit(self, sock: socket.socket, peer: Any, key: Any) -> bool:
        """Room for one more connection, and for one more from this peer?"""
        if len(self._conns) + len(self._taken) >= self.limits.max_connections:
            refuse(sock, "too many connections (WEB_MAX_CONNECTIONS)")
            self._noisy.log(
                logging.WARNING,
                "refused connection",
                "web server overloaded: connection from %s refused: WEB_MAX_CONNECTIONS open",
                peer,
            )
            return False
        share = self.limits.peer_share
        if share and self._peers.get(key, 0) >= share:
            refuse(sock, "too many connections from your address (WEB_MAX_CONNECTIONS_PER_PEER)")
            self._noisy.log(
                logging.WARNING,
                "refused connection (peer share)",
                "connection from %s refused: %s already holds WEB_MAX_CONNECTIONS_PER_PEER (%d)",
                peer,
                key,
                share,
            )
            return False
        return True

    def _peer_left(self, key: Any) -> None:
        count = self._peers.get(key, 0) - 1
        if count > 0:
            self._peers[key] = count
        else:
            self._peers.pop(key, None)

    # -- reading --------------------------------------------------------------

    def _on_readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._on_eof(conn)
            return
        try:
            requests = conn.parser.feed(data)
        except HttpError as exc:
            conn.queued.extend(exc.completed)  # the requests before the bad one are answered
            self._fail(conn, exc)
            return
        conn.queued.extend(requests)
        if requests:
            conn.continued = False
        self._after_read(conn)
        self._dispatch_next(conn)

    def _on_eof(self, conn: _Conn) -> None:
        if not conn.busy and not conn.queued and not conn.out:
            self._close(conn)
            return
        conn.eof = True  # e.g. `printf 'GET / ...' | nc`: the answer is still wanted
        self._unwatch_reads(conn)

    def _after_read(self, conn: _Conn) -> None:
        now = time.monotonic()
        parser = conn.parser
        if parser.in_request and conn.phase in ("idle", "headers") and not conn.busy:
            if parser.headers_complete:
                conn.phase, conn.deadline = "body", now + self.limits.body_timeout
            elif conn.phase == "idle":
                conn.phase, conn.deadline = "headers", now + self.limits.header_timeout
        self._maybe_continue(conn)
        if len(conn.queued) >= self.limits.max_pipelined:
            self._watch(conn, conn.events & ~selectors.EVENT_READ)  # back-pressure

    def _maybe_continue(self, conn: _Conn) -> None:
        """`100 Continue` for the request being read, once nothing is ahead of it."""
        ahead = conn.busy or conn.out or conn.queued
        if conn.parser.expects_continue and not conn.continued and not ahead:
            conn.continued = True
            self._write(conn, _CONTINUE)

    def _fail(self, conn: _Conn, exc: HttpError) -> None:
        self._noisy.log(
            logging.INFO, "bad request", "bad request from %s: %s", conn.peer, exc.detail
        )
        self._unwatch_reads(conn)
        conn.queued.append(None)  # answered in order, after the requests before it
        conn.error = exc
        self._dispatch_next(conn)

    # -- dispatching ----------------------------------------------------------

    def _dispatch_next(self, conn: _Conn) -> None:
        if conn.busy or conn.closed or not conn.queued:
            return
        request = conn.queued.popleft()
        if request is None:  # a parse error came after the requests before it
            exc = conn.error
            assert exc is not None
            self._write(conn, simple_response(exc.status, exc.reason, exc.detail), close=True)
            return
        if self._draining:
            self._write(conn, unavailable("the server is stopping"), close=True)
            return
        if request.upgrade and conn.out:  # the previous answer goes first, whole
            conn.queued.appendleft(request)
            return
        conn.busy, conn.phase, conn.deadline = True, "busy", None
        if request.upgrade:
            takeover = Takeover(
                conn.sock, request.trailing, conn.peer, self._release_taken, conn.peer_key
            )
            self._detach(conn, takeover)
            self._pool.submit(partial(self._serve_taken, request, takeover))
            return
        self._submit(conn, request)
        if len(conn.queued) < self.limits.max_pipelined and not (
            conn.close_after_write or conn.eof
        ):
            self._watch(conn, conn.events | selectors.EVENT_READ)

    def _submit(self, conn: _Conn, request: HttpRequest) -> None:
        try:
            submit, target = self._pick(request)
            job = _Job(partial(self._serve, conn, request, target), partial(self._cancelled, conn))
            if submit is None:
                self._pool.submit(job)
                return
            if submit(job):
                return
            access = (
                conn.peer[0] if conn.peer else "-",
                request.method,
                redact_target(request.target.decode("latin-1")),
                "503",
            )
            reply = Reply(unavailable("overloaded, try again"), request.keep_alive, access)
            self._noisy.log(
                logging.WARNING,
                "refused request",
                "web server overloaded: requests refused: every worker busy and "
                "WEB_QUEUE_LIMIT (%d) waiting",
                self.limits.queue_limit,
            )
        except Exception as exc:  # e.g. the container is being killed
            shown = redact_target(request.target.decode("latin-1"))
            _log.info("could not dispatch %s %r: %s", request.method, shown, exc)
            reply = Reply(unavailable("the service is stopping"), keep_alive=False)
        self._complete(conn, reply)

    def _cancelled(self, conn: _Conn) -> None:
        """The pool dropped the job (its container was killed): answer for it."""
        reply = Reply(unavailable("the service is stopping"), keep_alive=False)
        self.call_soon(partial(self._complete, conn, reply))

    def _serve(self, conn: _Conn, request: HttpRequest, target: Any) -> None:
        """On a request thread: run the handler, post the response to the loop."""
        reply = self._run_handler(request, conn.peer, None, target)
        self.call_soon(partial(self._complete, conn, reply))

    def _run_handler(
        self, request: HttpRequest, peer: Any, takeover: Takeover | None, target: Any = None
    ) -> Any:
        try:
            return self._handler(request, peer, takeover, target)
        except Exception:  # the handler guards itself; this is a bug, never a traceback out
            shown = redact_target(request.target.decode("latin-1"))
            _log.exception("unhandled error serving %s %r", request.method, shown)
            return Reply(simple_response(500, "Internal Server Error", "see the server log"), False)

    def _complete(self, conn: _Conn, reply: Reply) -> None:
        conn.busy = False
        if conn.closed:
            return
        keep = reply.keep_alive and not self._draining
        self._write(conn, reply.data, close=not keep)
        if reply.access is not None:
            _log.info('%s "%s %s" %s', *reply.access)
        if not conn.closed and not conn.close_after_write:
            self._dispatch_next(conn)
        self._check_drained()

    # -- upgraded connections ------------------------------------------------

    def _detach(self, conn: _Conn, takeover: Takeover) -> None:
        self._watch(conn, 0)
        conn.closed = True  # to this loop: the socket is the takeover's now
        del self._conns[conn.sock]
        conn.sock.setblocking(True)
        with self._taken_lock:
            self._taken.add(takeover)

    def _serve_taken(self, request: HttpRequest, takeover: Takeover) -> None:
        reply = self._run_handler(request, takeover.peer, takeover)
        if reply is not None:  # not upgraded after all: answer, then close
            try:
                takeover.sock.settimeout(self.limits.body_timeout)
                takeover.sock.sendall(reply.data)
            except OSError:
                pass
        takeover.close()

    def _release_taken(self, takeover: Takeover) -> None:
        with self._taken_lock:
            known = takeover in self._taken
            self._taken.discard(takeover)
        if known:
            close_socket(takeover.sock)
            self.call_soon(partial(self._peer_left, takeover.peer_key))
        self.call_soon(self._check_drained)

    # -- writing --------------------------------------------------------------

    def _write(self, conn: _Conn, data: bytes, close: bool = False) -> None:
        conn.out += data
        conn.close_after_write = conn.close_after_write or close
        if close:
            self._unwatch_reads(conn)
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out) if conn.out else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        del conn.out[:sent]
        if conn.out:
            if conn.phase != "writing":
                conn.phase, conn.deadline = "writing", time.monotonic() + self.limits.body_timeout
            self._watch(conn, conn.events | selectors.EVENT_WRITE)
            return
        self._watch(conn, conn.events & ~selectors.EVENT_WRITE)
        if conn.close_after_write or (conn.eof and not conn.busy and not conn.queued):
            self._close(conn)
        elif conn.busy:  # written while the next request runs: no deadline for it
            conn.phase, conn.deadline = "busy", None
        else:
            self._set_idle(conn, time.monotonic())
            self._dispatch_next(conn)  # e.g. an upgrade that waited for this output
            self._maybe_continue(conn)

    def _set_idle(self, conn: _Conn, now: float) -> None:
        if conn.parser.headers_complete:
            conn.phase, conn.deadline = "body", now + self.limits.body_timeout
        elif conn.parser.in_request:
            conn.phase, conn.deadline = "headers", now + self.limits.header_timeout
        else:
            conn.phase, conn.deadline = "idle", now + self.limits.keepalive_timeout
        if self._draining and not conn.queued:
            self._close(conn)

    # -- timeouts, draining, closing -------------------------------------------

    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._conns.values() if c.deadline and c.deadline <= now]:
            if conn.phase in ("headers", "body"):
                self._noisy.log(
                    logging.INFO,
                    "request timeout",
                    "request from %s timed out (%s)",
                    conn.peer,
                    conn.phase,
                )
                self._write(conn, simple_response(408, "Request Timeout", conn.phase), close=True)
                if not conn.closed:  # it won't read the answer either
                    self._close(conn)
            else:
                self._close(conn)

    def _begin_drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        self._close_listener()
        for conn in list(self._conns.values()):
            if not conn.busy and not conn.out and not conn.queued:
                self._close(conn)
        with self._taken_lock:
            taken = list(self._taken)
        for takeover in taken:  # upgraded connections have no "between requests": end them
            end_taken(takeover)
        self._check_drained()

    def _check_drained(self) -> None:
        if self._draining and not self._conns and not self._taken:
            self._drained.set()

    def _close_listener(self) -> None:
        if self._listener.fileno() >= 0:
            self._selector.unregister(self._listener)
            self._listener.close()
        self._listener_closed.set()

    def _shut(self) -> None:
        self._running = False

    def _close_everything(self) -> None:
        self._close_listener()
        for conn in list(self._conns.values()):
            self._close(conn)
        with self._taken_lock:
            taken = list(self._taken)
        for takeover in taken:  # wakes the threads blocked reading them
            shutdown(takeover.sock)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._watch(conn, 0)
        self._conns.pop(conn.sock, None)
        self._peer_left(conn.peer_key)
        close_socket(conn.sock)
        self._check_drained()

    # -- selector bookkeeping --------------------------------------------------

    def _unwatch_reads(self, conn: _Conn) -> None:
        self._watch(conn, conn.events & ~selectors.EVENT_READ)

    def _watch(self, conn: _Conn, events: int) -> None:
        if events == conn.events or conn.sock.fileno() < 0:
            return
        if not conn.events:
            self._selector.register(conn.sock, events, conn)
        elif not events:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, events, conn)
        conn.events = events
