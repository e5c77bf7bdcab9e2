"""One WebSocket connection, from the opening handshake to the close.

How it works
------------
The site hands an upgrade request to one of its request-pool threads with
the socket in blocking mode (`nameko._web.site.Takeover`). That thread
becomes the session thread: it checks the handshake, writes the ``101``,
and then runs `WsSession.messages`, a loop that reads the socket, feeds
wsproto and yields each complete message to the caller, which answers it
before the next one is read (requests on a socket are sequential).

Writes come from two kinds of threads: the session thread (replies,
pongs, pings, the close frame) and service workers (broadcast, unicast).
``_lock`` serialises them: wsproto's connection state and the
``sendall`` happen under it, so frames never interleave. Reads feed
wsproto under the same lock, because a received Close changes the state
that a send checks. The socket timeout (`SEND_TIMEOUT`) bounds every
``sendall``, so a client that stops reading holds a broadcaster for at
most that long; then the socket is given up.

The session thread waits for data with a poll, not the socket timeout, so
the ping cadence is independent of the send bound: after
``WEB_WEBSOCKET_PING_INTERVAL`` seconds without hearing from the peer we
send a Ping, after two intervals we drop the connection.

Other threads never read. To end a session they shut the socket: `go_away`
(graceful, from the site's drain or the server's stop) shuts the read side
only, which wakes the reader with end-of-file; the session thread then
sends Close 1001 itself. `abort` (kill) shuts both sides. Only
`finish`, on the session thread, releases the socket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import selectors
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from nameko._concurrency import Lock
from nameko._web.site import Takeover

__all__ = ["SEND_TIMEOUT", "HandshakeError", "WsSession", "accept_key"]

_log = logging.getLogger("nameko.web.websocket")

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_READ_SIZE = 65536
SEND_TIMEOUT = 10.0  # a frame that can't be sent in this long: the peer is gone
_LINGER = 2.0  # after our Close, how long we read on, waiting for the peer's
_Selector = getattr(selectors, "PollSelector", selectors.SelectSelector)  # poll: no fd cost

GOING_AWAY = 1001
TOO_BIG = 1009


class HandshakeError(Exception):
    """The upgrade request is not a WebSocket handshake we can accept (400)."""


def accept_key(headers: Mapping[str, str]) -> str:
    """The ``Sec-WebSocket-Accept`` value for a valid handshake (RFC 6455 4.2)."""
    if headers.get("Upgrade", "").strip().lower() != "websocket":
        raise HandshakeError("not a WebSocket upgrade")
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        raise HandshakeError("unsupported Sec-WebSocket-Version; this server speaks 13")
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        nonce = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        raise HandshakeError("invalid Sec-WebSocket-Key")
    digest = hashlib.sha1((key + _GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _switching_protocols(accept: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode("ascii")


class WsSession:
    """The frames of one accepted WebSocket; see the module docstring for threads."""

    def __init__(self, takeover: Takeover, max_message: int, ping_interval: float) -> None:
        self._takeover = takeover
        self._sock = takeover.sock
        self._ws = Connection(ConnectionType.SERVER, trailing_data=takeover.trailing)
        self._lock = Lock()
        self._max_message = max_message
        self._ping_interval = ping_interval
        self._selector = _Selector()
        self._last_heard = time.monotonic()
        self._pinged = False
        self._close_deadline: float | None = None  # set once our Close is sent
        self._parts: list[Any] = []  # the message being received, in pieces
        self._size = 0
        self._dead = False  # no more sends: the socket failed or is shut
        self._going_away = False
        self.peer = takeover.peer

    # -- any thread -----------------------------------------------------------

    def send_text(self, text: str) -> bool:
        """Send one text message; False if the connection can't take it."""
        return self._send(TextMessage(data=text))

    def go_away(self) -> None:
        """Ask the session thread to close with 1001 (never blocks)."""
        self._going_away = True
        _shutdown(self._sock, socket.SHUT_RD)  # wakes the reader with end-of-file

    def abort(self) -> None:
        """Drop the connection without a closing handshake (never blocks)."""
        self._dead = True
        _shutdown(self._sock, socket.SHUT_RDWR)

    def _send(self, event: Event) -> bool:
        with self._lock:
            if self._dead:
                return False
            try:
                data = self._ws.send(event)
            except LocalProtocolError:  # closing: nothing but the Close may go out
                return False
            try:
                self._sock.sendall(data)
            except OSError as exc:  # includes the SEND_TIMEOUT expiring
                _log.info("websocket to %s failed: %s", self.peer, exc)
                self.abort()
                return False
        return True

    # -- the session thread ---------------------------------------------------

    def open(self, accept: str) -> bool:
        """Answer the handshake with 101; False if the socket is already gone."""
        # from here on we own the socket: the site must not answer the request
        self._takeover.accepted = True
        self._takeover.on_drain = self.go_away
        self._sock.settimeout(SEND_TIMEOUT)
        self._selector.register(self._sock, selectors.EVENT_READ)
        try:
            self._sock.sendall(_switching_protocols(accept))
        except OSError:
            self._dead = True
            return False
        return True

    def messages(self) -> Iterator[str | bytes]:
        """Each complete message, until the connection ends."""
        events = self._feed(None)  # frames that came with the handshake
        while True:
            for event in events:
                if isinstance(event, CloseConnection):
                    if not self._on_close_frame(event):
                        return
                elif isinstance(event, Message):
                    message = self._on_message(event)
                    if message is not None:
                        yield message
                elif isinstance(event, Ping):
                    self._send(event.response())
            data = self._receive()
            while data is None:
                data = self._receive()
            if not data:
                self._on_eof()
                return
            events = self._feed(data)

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; `messages` reads on for the peer's Close."""
        if self._send(CloseConnection(code=code, reason=reason)):
            self._close_deadline = time.monotonic() + _LINGER
        self._parts, self._size = [], 0

    def finish(self) -> None:
        """Release the socket (once, when `messages` is done)."""
        self._dead = True
        _shutdown(self._sock, socket.SHUT_RDWR)
        self._selector.close()
        self._takeover.close()

    def _feed(self, data: bytes | None) -> list[Event]:
        with self._lock:  # a received Close changes the state `_send` checks
            if data:
                self._ws.receive_data(data)
            return list(self._ws.events())

    def _receive(self) -> bytes | None:
        """The next bytes; None if nothing came in time, b"" at the end."""
        if not self._selector.select(self._wait_time()):
            return None if self._on_quiet() else b""
        try:
            data = self._sock.recv(_READ_SIZE)
        except OSError:
            return b""
        self._last_heard, self._pinged = time.monotonic(), False
        return data

    def _wait_time(self) -> float | None:
        if self._close_deadline is not None:
            return max(0.0, self._close_deadline - time.monotonic())
        if self._ping_interval:
            return self._ping_interval / 2
        return None  # no pings: wait until data comes or the socket is shut

    def _on_quiet(self) -> bool:
        """Nothing heard for a while: ping, or give up; False to end the session."""
        if self._close_deadline is not None:
            return time.monotonic() < self._close_deadline
        quiet = time.monotonic() - self._last_heard
        if quiet >= 2 * self._ping_interval:
            _log.info("websocket %s silent for %.1fs: dropping it", self.peer, quiet)
            return False
        if quiet >= self._ping_interval and not self._pinged:
            self._pinged = True
            self._send(Ping(payload=b"shimeji"))
        return True

    def _on_message(self, event: Message) -> str | bytes | None:
        if self._close_deadline is not None:
            return None  # closing: the peer's data goes nowhere
        chunk = event.data
        self._size += len(chunk) if isinstance(chunk, bytes) or chunk.isascii() else len(
            chunk.encode("utf-8")
        )
        if self._size > self._max_message:
            _log.info("websocket %s sent a message over %d bytes", self.peer, self._max_message)
            self.close(TOO_BIG, "message too big")
            return None
        self._parts.append(chunk)
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        empty = "" if isinstance(event, TextMessage) else b""
        return parts[0] if len(parts) == 1 else empty.join(parts)

    def _on_close_frame(self, event: CloseConnection) -> bool:
        """The peer closed (or broke the protocol); True to read on."""
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            self._send(event.response())  # the peer started it: echo, done
            return False
        if self._ws.state is ConnectionState.OPEN:  # a protocol error, as a Close event
            _log.info("websocket %s: %s", self.peer, event.reason)
            self.close(event.code, event.reason)
            return self._close_deadline is not None
        return False  # the answer to our own Close

    def _on_eof(self) -> None:
        if self._going_away and self._ws.state is ConnectionState.OPEN:
            self._send(CloseConnection(code=GOING_AWAY, reason="server stopping"))


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:  # already shut, or closed
        pass
