"""The I/O driver: one socket and one I/O thread under a `Connection` state machine.

This is the only module besides ``nameko._concurrency`` that imports
``threading``, ``socket``, ``selectors`` and ``ssl`` directly (``ssl`` only
for an ``amqps://`` URI or ``ssl`` options: it costs a process about 4 MiB).

The I/O thread connects (with the retry policy its `Handler` decides),
then loops on a selector over the socket and a wakeup socketpair:

* reads feed the state machine; the events it returns are handed to the
  handler on this thread (so ``on_message`` callbacks run here);
* other threads change the state machine under `Driver.lock` through
  `Driver.run`. Every write is one non-blocking ``send`` of everything
  queued, made under the lock (so frames never interleave). Over plain TCP
  an uncontended caller makes that send itself, saving a thread handoff per
  call; otherwise (a flush already pending, a full socket buffer, TLS whose
  objects must not be used from two threads) it wakes the loop with one byte
  on the socketpair and the loop writes the batch;
* heartbeats are sent and checked here and nowhere else: a user thread
  spinning the CPU only delays this thread by the interpreter's switch
  interval, it cannot starve it.

When the connection drops the handler gets every waiter that was pending
(to fail them) and the thread reconnects after the delay the handler picks.

Several nodes (a cluster) are tried in turn, round-robin: a lost
connection moves on to the next node at once, and a node that can't be
reached is followed at once by the next; the handler's back-off applies
only once every node of a round has failed.
"""

from __future__ import annotations

import collections
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nameko._amqp.connection import CLOSED, Connection
from nameko._amqp.events import ConnectionClosed, Event, PendingPublish
from nameko._amqp.uri import AmqpParams

if TYPE_CHECKING:
    import ssl

__all__ = ["Driver", "Handler", "NotConnected", "tls_context"]

log = logging.getLogger(__name__)

T = TypeVar("T")
RECV_SIZE = 256 * 1024
READS_PER_TURN = 32  # then let writes, timers and wakeups have a turn
CLOSE_GRACE = 3.0  # seconds to wait for the broker's Close-Ok
MIN_UPTIME = 1.0  # a connection dropped sooner is retried with back-off, not at once
_WOULD_BLOCK: tuple[type[Exception], ...] = (BlockingIOError, InterruptedError)


def _tls_would_block() -> tuple[type[Exception], ...]:
    import ssl

    return (*_WOULD_BLOCK, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class NotConnected(Exception):
    """No connection is up right now (connecting, reconnecting or closed)."""


class ClosedByBroker(ConnectionAbortedError):
    """The broker closed the connection (Connection.Close from the server)."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(f"closed by the broker: {reply_code} {reply_text}")
        self.reply_code = reply_code
        self.reply_text = reply_text


class _Stopped(Exception):
    """`Driver.close` was called."""


class Handler(Protocol):
    """What the driver calls back (on the I/O thread)."""

    def new_connection(self) -> Connection: ...

    def on_connected(self, conn: Connection) -> None: ...

    def on_events(self, events: list[Event]) -> None: ...

    def on_disconnected(
        self, waiting: list[Any], unconfirmed: list[PendingPublish], exc: BaseException | None
    ) -> None: ...

    def retry_delay(self, failures: int, exc: BaseException, ever_connected: bool) -> float | None:
        """Seconds to wait before the next attempt; None gives up."""


def tls_context(options: bool | dict[str, Any] | ssl.SSLContext | None) -> ssl.SSLContext:
    """An `ssl.SSLContext` from kombu/py-amqp style ``ssl`` options: ``True``
    or a dict with ``ca_certs``, ``certfile``, ``keyfile``, ``cert_reqs``,
    ``check_hostname``, ``ciphers``, ``tls_minimum_version``... (the peer is
    verified unless ``cert_reqs`` says otherwise)."""
    import ssl

    if isinstance(options, ssl.SSLContext):
        return options
    opts = dict(options) if isinstance(options, dict) else {}
    if isinstance(opts.get("context"), ssl.SSLContext):
        return opts["context"]
    context = ssl.create_default_context(cafile=opts.get("ca_certs"))
    if opts.get("certfile"):
        context.load_cert_chain(opts["certfile"], opts.get("keyfile"), opts.get("password"))
    cert_reqs = opts.get("cert_reqs", ssl.CERT_REQUIRED)
    if cert_reqs is not None:
        context.check_hostname = bool(opts.get("check_hostname", cert_reqs != ssl.CERT_NONE))
        context.verify_mode = ssl.VerifyMode(cert_reqs)
    if opts.get("ciphers"):
        context.set_ciphers(opts["ciphers"])
    for key, attribute in (
        ("tls_minimum_version", "minimum_version"),
        ("tls_maximum_version", "maximum_version"),
    ):
        if opts.get(key) is not None:
            setattr(context, attribute, opts[key])
    return context


class Driver:
    """Socket, I/O thread and reconnect loop for one broker connection."""

    def __init__(
        self,
        params: AmqpParams | Sequence[AmqpParams],
        handler: Handler,
        *,
        ssl_options: bool | dict[str, Any] | ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        name: str = "amqp-io",
    ) -> None:
        self.nodes = (params,) if isinstance(params, AmqpParams) else tuple(params)
        self._node = 0  # the index of the node in use or being tried
        self.lock = threading.Lock()
        self._handler = handler
        tls = ssl_options or any(node.tls for node in self.nodes)
        self._tls = tls_context(ssl_options) if tls else None
        self._would_block = _WOULD_BLOCK if self._tls is None else _tls_would_block()
        self._server_hostname = (
            ssl_options.get("server_hostname") if isinstance(ssl_options, dict) else None
        )
        self._connect_timeout = connect_timeout
        self._conn: Connection | None = None  # set while the connection is ready
        self._dirty = False  # frames queued and the loop already knows (or will look)
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        # `submit` calls that found the lock busy: (fn, args, on_error)
        self._submitted: collections.deque[tuple[Any, ...]] = collections.deque()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._io_ident: int | None = None
        # False only while the I/O thread sleeps in select(): another thread
        # that leaves it work need not wake it otherwise (it looks before
        # sleeping), which saves three syscalls per contended publish.
        self._io_awake = True
        self._unsent: memoryview | None = None  # the rest of a partial send
        # One buffer for every read: `recv(RECV_SIZE)` would allocate 256 KiB
        # (an mmap, then an mremap to shrink it, then a munmap) per read.
        self._recv_buffer = memoryview(bytearray(RECV_SIZE))
        self._want_write = False
        self._sock: socket.socket | None = None
        self._direct: socket.socket | None = None  # the socket callers may write to
        self._close_deadline: float | None = None
        self._was_ready = False
        self._ready_since = 0.0
        self._closed_by: ClosedByBroker | None = None

    # -- any thread --------------------------------------------------------

    @property
    def params(self) -> AmqpParams:
        """The node in use, or being tried."""
        return self.nodes[self._node]

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the I/O thread is alive (connected or reconnecting)."""
        return self._thread.is_alive()

    @property
    def connection(self) -> Connection | None:
        """The connection while it is up; None while (re)connecting or
        closed. Between the broker's Connection.Close and the end of the
        session it is still set but not ready: `run` and `submit` then
        raise (or report) `NotConnected` rather than the state machine's
        `ProtocolError`."""
        return self._conn

    def on_io_thread(self) -> bool:
        return threading.get_ident() == self._io_ident

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(connection, *args)`` under the lock, then make sure what
        it queued is sent. Raises `NotConnected`.

        A caller that got the lock without waiting, over plain TCP, with no
        flush pending, writes the queued frames itself (one non-blocking send,
        still under the lock): that saves a thread handoff per call when
        calls are sparse. Otherwise (other threads queueing too, a full
        socket buffer, TLS) it wakes the I/O thread, which sends everything
        queued meanwhile as one batch.
        """
        uncontended = self.lock.acquire(blocking=False)
        if not uncontended:
            self.lock.acquire()
        return self._run_held(fn, args, uncontended)

    def submit(
        self, fn: Callable[..., Any], *args: Any, on_error: Callable[[Exception], None]
    ) -> None:
        """Like `run` for calls whose result nobody needs (publishes, acks),
        but never waits for the lock: when another thread holds it, the call
        is queued for the I/O thread. ``on_error(NotConnected())`` reports a
        queued call that found no connection.

        Order per thread is kept: queued calls are taken and run under the
        lock in one go, and a caller holding the lock queues behind any."""
        if self.lock.acquire(blocking=False):
            if not self._submitted:
                self._run_held(fn, args, True)
                return
            self._submitted.append((fn, args, on_error))
            self.lock.release()
        else:
            self._submitted.append((fn, args, on_error))
        if not self._io_awake:
            self._wake()

    def _run_held(self, fn: Callable[..., T], args: tuple[Any, ...], uncontended: bool) -> T:
        """`run`, the lock already held (released here)."""
        try:
            conn = self._conn
            if conn is None or not conn.is_ready:  # closing: the broker sent Close
                raise NotConnected()
            result = fn(conn, *args)
            if self._dirty:
                return result  # a flush is coming anyway: batch with it
            io_thread = threading.get_ident() == self._io_ident
            if uncontended and not io_thread and self._direct is not None and self._unsent is None:
                try:
                    if self._write_locked(self._direct, conn):
                        return result
                except OSError:
                    pass  # the I/O thread finds out from the socket itself
            self._dirty = True
        finally:
            self.lock.release()
        if not self._io_awake:
            self._wake()
        return result

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the I/O thread."""
        self._calls.append(fn)
        if not self._io_awake:
            self._wake()

    def close(self, timeout: float = 10.0) -> None:
        """Close the connection (politely when it is up) and stop the thread."""
        self._stop.set()
        self.call_soon(self._begin_close)
        if self._thread.is_alive() and not self.on_io_thread():
            self._thread.join(timeout)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wakeup is pending anyway) or already closed
            pass

    # -- the I/O thread ------------------------------------------------------

    def _main(self) -> None:
        self._io_ident = threading.get_ident()
        failures, ever_connected, tried = 0, False, 0
        try:
            while not self._stop.is_set():
                try:
                    self._session()
                    return
                except _Stopped:
                    return
                except Exception as exc:
                    if self._stop.is_set():
                        return
                    failed = self.params
                    self._node = (self._node + 1) % len(self.nodes)
                    if self._was_ready:
                        failures, ever_connected, tried = 0, True, 0
                        if time.monotonic() - self._ready_since > MIN_UPTIME:
                            continue  # an established connection dropped: retry at once
                    else:
                        tried += 1
                        if tried < len(self.nodes):  # another node may answer: try it now
                            log.warning(
                                "Error connecting to broker at %s (%s); trying %s",
                                *(failed.display, exc, self.params.display),
                            )
                            continue
                    tried = 0
                    delay = self._handler.retry_delay(failures, exc, ever_connected)
                    if delay is None:
                        return
                    failures += 1
                    self._stop.wait(delay)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _session(self) -> None:
        self._was_ready = False
        self._closed_by = None
        sock = self._sock = self._open_socket()
        conn = self._handler.new_connection()
        error: BaseException | None = None
        try:
            self._serve(sock, conn)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end_session(sock, conn, error)

    def _end_session(
        self, sock: socket.socket, conn: Connection, error: BaseException | None
    ) -> None:
        try:
            sock.close()
        except OSError:
            pass
        with self.lock:
            self._conn = None
            self._direct = None
            self._dirty = False
            self._unsent = None
            waiting, unconfirmed = conn.abandon()
        self._want_write = False
        self._close_deadline = None
        if self._was_ready:
            self._handler.on_disconnected(waiting, unconfirmed, error)

    def _open_socket(self) -> socket.socket:
        address = (self.params.host, self.params.port)
        sock = socket.create_connection(address, timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self._tls is not None:
                hostname = self._server_hostname or self.params.host
                sock = self._tls.wrap_socket(sock, server_hostname=hostname)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        if self._stop.is_set():
            sock.close()
            raise _Stopped()
        return sock

    def _serve(self, sock: socket.socket, conn: Connection) -> None:
        handshake_deadline = time.monotonic() + self._connect_timeout
        conn.start_clock(time.monotonic())
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            more = False
            while True:
                self._run_calls()
                self._run_submitted()
                self._tick(conn)
                self._flush(sock, selector, conn)
                if self._finished(conn):
                    return
                now = time.monotonic()
                if not self._was_ready and now > handshake_deadline:
                    raise TimeoutError("timed out during the AMQP handshake")
                self._io_awake = False  # before looking for work: see __init__
                timeout = (
                    0.0
                    if more or self._calls or self._submitted or self._dirty
                    else self._select_timeout(conn, now, handshake_deadline)
                )
                more = False
                ready = selector.select(timeout)
                self._io_awake = True
                for key, mask in ready:
                    if key.fileobj is self._wake_r:
                        self._drain_wakeups()
                        continue
                    if mask & selectors.EVENT_READ:
                        more = self._read(sock, conn)
                    if mask & selectors.EVENT_WRITE:
                        self._flush(sock, selector, conn)

    def _select_timeout(
        self, conn: Connection, now: float, handshake_deadline: float
    ) -> float | None:
        candidates = [conn.next_tick(now)]
        if not self._was_ready:
            candidates.append(handshake_deadline - now)
        if self._close_deadline is not None:
            candidates.append(self._close_deadline - now)
        due = [c for c in candidates if c is not None]
        return max(0.0, min(due)) if due else None

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _read(self, sock: socket.socket, conn: Connection) -> bool:
        """Read what is there; True when more may be waiting (read budget spent,
        or TLS holds decrypted bytes the selector cannot see)."""
        buffer = self._recv_buffer
        for _ in range(READS_PER_TURN):
            try:
                size = sock.recv_into(buffer)
            except self._would_block:
                return False
            if not size:
                raise ConnectionResetError("the broker closed the connection")
            self._feed(conn, buffer[:size].tobytes())
            tls_pending = self._tls is not None and sock.pending()  # type: ignore[attr-defined]
            if size < RECV_SIZE and not tls_pending:
                return False
        return True

    def _feed(self, conn: Connection, data: bytes) -> None:
        with self.lock:
            events = conn.receive_data(data, time.monotonic())
        if not self._was_ready and conn.is_ready:
            self._was_ready = True
            self._ready_since = time.monotonic()
            with self.lock:
                self._conn = conn
                # TLS objects must not be read and written from two threads
                self._direct = self._sock if self._tls is None else None
            self._handler.on_connected(conn)
        if events:
            if conn.state == CLOSED:
                self._note_close_reason(events)
            self._handler.on_events(events)

    def _note_close_reason(self, events: list[Event]) -> None:
        for event in events:
            if type(event) is ConnectionClosed and event.by_server:
                self._closed_by = ClosedByBroker(event.reply_code, event.reply_text)

    def _run_submitted(self) -> None:
        """Run the queued `submit` calls, in order, in one hold of the lock."""
        if not self._submitted:
            return
        failed: list[tuple[Callable[[Exception], None], Exception]] = []
        with self.lock:
            conn = self._conn if self._conn is not None and self._conn.is_ready else None
            while self._submitted:
                fn, args, on_error = self._submitted.popleft()
                try:
                    if conn is None:
                        raise NotConnected()
                    fn(conn, *args)
                except Exception as exc:
                    failed.append((on_error, exc))
        for on_error, error in failed:  # outside the lock: callers' code
            try:
                on_error(error)
            except Exception:
                log.exception("error reporting a failed submit")

    def _run_calls(self) -> None:
        while self._calls:
            fn = self._calls.popleft()
            try:
                fn()
            except _Stopped:
                raise
            except Exception:
                log.exception("error in a call scheduled on the AMQP I/O thread")

    def _tick(self, conn: Connection) -> None:
        with self.lock:
            dead = conn.tick(time.monotonic())
        if dead is not None:
            raise TimeoutError(
                f"missed heartbeats from the broker ({dead.silent_for:.1f}s of silence)"
            )

    def _flush(
        self, sock: socket.socket, selector: selectors.BaseSelector, conn: Connection
    ) -> None:
        with self.lock:
            self._dirty = False
            done = self._write_locked(sock, conn)
        if done == self._want_write:  # watch for writability only while bytes wait
            self._want_write = not done
            events = selectors.EVENT_READ | (0 if done else selectors.EVENT_WRITE)
            selector.modify(sock, events)

    def _write_locked(self, sock: socket.socket, conn: Connection) -> bool:
        """Send what is queued (lock held); False when bytes are left over.

        What a full socket buffer left unsent goes first, from a view of the
        same bytes (no copy: a 100 MiB body would otherwise be copied again
        at every partial send); the state machine keeps newer frames until
        then."""
        if self._unsent is not None and not self._send_view(sock, self._unsent):
            return False
        data = conn.data_to_send(time.monotonic())
        return not data or self._send_view(sock, memoryview(data))

    def _send_view(self, sock: socket.socket, view: memoryview) -> bool:
        try:
            sent = sock.send(view)
        except self._would_block:
            sent = 0
        except OSError:
            self._unsent = view
            raise
        if sent < len(view):  # the socket buffer is full: finish when writable
            self._unsent = view[sent:]
            return False
        self._unsent = None
        return True

    def _begin_close(self) -> None:
        with self.lock:
            conn = self._conn
            if conn is None:
                raise _Stopped()
            conn.close()
            self._dirty = True
        self._close_deadline = time.monotonic() + CLOSE_GRACE

    def _finished(self, conn: Connection) -> bool:
        """True when our close completed; raises when the broker closed on us."""
        if conn.state == CLOSED:
            if self._close_deadline is not None:
                return True
            raise self._closed_by or ConnectionAbortedError("the broker closed the connection")
        # no Close-Ok in time: just drop the socket
        return self._close_deadline is not None and time.monotonic() > self._close_deadline
