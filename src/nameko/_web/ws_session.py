"""One WebSocket connection: handshake, frames, keep-alive, size cap.

How it works
------------
The site hands an upgraded connection to a request thread (`Takeover`);
`accept` writes the ``101 Switching Protocols`` answer and `WebSocketSession`
then owns the socket on that thread. `run` reads, feeds wsproto and passes
each complete text message to a callback, on the same thread, so the
messages of one socket are handled one after another (SPEC 8).

Other threads send too (a worker's `broadcast` or `unicast`): every write
goes through `_send`, which holds ``_lock`` while wsproto encodes and the
socket sends, so frames never interleave. Every send is bounded by the
socket timeout (the ping interval, or `SEND_TIMEOUT` with pings off): a
client that stops reading holds a sender that long at most, then the
connection is given up. Keep-alive: when the socket has
been quiet for ``WEB_WEBSOCKET_PING_INTERVAL`` the session sends a Ping; if
nothing at all arrives in the next interval the connection is dead and is
closed. A message longer than ``WEB_WEBSOCKET_MAX_MESSAGE`` closes the
connection with 1009 (message too big) before it is buffered whole.

Ending a session from another thread (the site's drain, on its I/O thread,
or the server's stop) must not block on the lock or the socket: `go_away`
only shuts the read side, which wakes `run` with end-of-file, and the
session thread sends Close 1001 itself.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from nameko._concurrency import Lock
from nameko._web.connections import Takeover
from nameko._web.limits import WebLimits

__all__ = ["WebSocketSession", "accept"]

_log = logging.getLogger("nameko.web.websocket")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
GOING_AWAY, PROTOCOL_ERROR, MESSAGE_TOO_BIG = 1001, 1002, 1009
SEND_TIMEOUT = 10.0  # with pings off: how long one send may take before we give up


def accept(takeover: Takeover, headers: Any) -> bool:
    """Answer a valid handshake with 101 and take the socket; False if invalid."""
    key = headers.get("Sec-WebSocket-Key", "")
    upgrade = headers.get("Upgrade", "").lower()
    if upgrade != "websocket" or headers.get("Sec-WebSocket-Version") != "13" or not key:
        return False
    digest = hashlib.sha1(key.strip().encode("latin-1") + _GUID).digest()
    try:
        takeover.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n\r\n"
        )
    except OSError:  # the client left during the handshake: nothing to serve
        takeover.accepted = True  # nor anything to answer
        return False
    takeover.accepted = True
    return True


class WebSocketSession:
    def __init__(self, takeover: Takeover, limits: WebLimits) -> None:
        self.takeover = takeover
        self._sock = takeover.sock
        self._limits = limits
        self._ws = Connection(ConnectionType.SERVER)
        self._lock = Lock()
        self._closed = False
        self._going_away = False
        self._message: list[str] = []
        self._message_size = 0
        # the read timeout is the ping cadence and the bound on every send
        self._sock.settimeout(limits.websocket_ping_interval or SEND_TIMEOUT)

    @property
    def closed(self) -> bool:
        return self._closed

    def send_text(self, text: str) -> bool:
        """Send one text message (any thread); False if the socket is gone."""
        return self._send(TextMessage(data=text))

    def close(self, code: int = GOING_AWAY, reason: str = "") -> None:
        """Start the closing handshake and stop reading (any thread)."""
        self._send(CloseConnection(code=code, reason=reason))
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes `run` if it is reading
        except OSError:
            pass

    def go_away(self) -> None:
        """Have the session thread close with 1001; never blocks (any thread)."""
        self._going_away = True
        try:
            self._sock.shutdown(socket.SHUT_RD)  # `run` wakes with end-of-file
        except OSError:
            pass

    def _send(self, event: Event) -> bool:
        with self._lock:
            if self._closed:
                return False
            try:
                self._sock.sendall(self._ws.send(event))
            except (OSError, LocalProtocolError):
                self._closed = True
                return False
            return True

    # -- the reading side: on the session's own thread ------------------------------

    def run(self, on_message: Callable[[str], None]) -> None:
        """Read until the connection ends; each whole text message to ``on_message``."""
        interval = self._limits.websocket_ping_interval
        if self.takeover.trailing:
            self._ws.receive_data(self.takeover.trailing)
            self._handle_events(on_message)
        pinged = False
        while not self._closed:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                if not interval:
                    continue
                if pinged:  # a whole interval of silence after a ping
                    self.close(GOING_AWAY, "keep-alive timeout")
                    return
                pinged = self._send(Ping(payload=b"keep-alive"))
                continue
            except OSError:
                break
            if not data:  # the peer closed its side, or `go_away` shut ours
                if self._going_away:
                    self.close(GOING_AWAY, "server stopping")
                break
            pinged = False
            self._ws.receive_data(data)
            if not self._handle_events(on_message):
                break
        self._closed = True

    def _handle_events(self, on_message: Callable[[str], None]) -> bool:
        for event in self._ws.events():
            if isinstance(event, Message):
                if not self._collect(event, on_message):
                    return False
            elif isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, CloseConnection):
                self._send(event.response())
                return False
        return True

    def _collect(self, event: Message[Any], on_message: Callable[[str], None]) -> bool:
        data = event.data
        ascii_only = isinstance(data, (bytes, bytearray)) or data.isascii()
        self._message_size += len(data) if ascii_only else len(data.encode("utf-8"))
        if self._message_size > self._limits.websocket_max_message:
            self.close(MESSAGE_TOO_BIG, "message larger than WEB_WEBSOCKET_MAX_MESSAGE")
            return False
        if isinstance(event, BytesMessage):
            data = bytes(data).decode("utf-8", "replace")  # frames are JSON text (SPEC 8)
        self._message.append(data)
        if event.message_finished:
            text = "".join(self._message)
            self._message, self._message_size = [], 0
            on_message(text)
        return True
