"""A WebSocket client for tests of `nameko.web.websocket` services (SPEC 11.5).

Needs the ``websocket-client`` package. Every wait has a timeout, so a test
against a service that never answers fails instead of hanging.
"""

from __future__ import annotations

import itertools
import json
import queue
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from nameko._concurrency import Event, OneShot, start_thread
from nameko.exceptions import deserialize

__all__ = ["VirtualSocket", "make_virtual_socket"]

TIMEOUT = 10


class VirtualSocket:
    """The client side of one connection: `rpc` calls and the events pushed to it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.socket_id: str | None = None
        self.connected = Event()
        self.closed = Event()
        self.close_status: int | None = None
        self._replies: dict[str, OneShot[dict[str, Any]]] = {}
        self._events: dict[str, queue.Queue[tuple[str, Any]]] = defaultdict(queue.Queue)
        self._ids = itertools.count()

    def rpc(self, _method: str, timeout: float = TIMEOUT, **data: Any) -> Any:
        correlation_id = str(next(self._ids))
        reply: OneShot[dict[str, Any]] = OneShot()
        self._replies[correlation_id] = reply
        message = {"method": _method, "data": data, "correlation_id": correlation_id}
        self.app.send(json.dumps(message))
        frame = reply.get(timeout)
        if frame["success"]:
            return frame["data"]
        raise deserialize(frame["error"])

    def send_raw(self, text: str) -> None:
        self.app.send(text)

    def get_event_queue(self, event_type: str) -> queue.Queue[tuple[str, Any]]:
        return self._events[event_type]

    def wait_for_event(self, event_type: str, timeout: float = TIMEOUT) -> tuple[str, Any]:
        return self._events[event_type].get(timeout=timeout)

    def wait_for_result(self, correlation_id: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The raw result frame for ``correlation_id`` (also None, for malformed requests)."""
        reply = self._replies.setdefault(str(correlation_id), OneShot())
        return reply.get(timeout)

    # websocket-client callbacks, on its thread
    def on_message(self, app: Any, text: str) -> None:
        frame = json.loads(text)
        if frame["type"] == "result":
            key = str(frame["correlation_id"])
            self._replies.setdefault(key, OneShot()).send(frame)
            return
        if frame["event"] == "connected":
            self.socket_id = frame["data"]["socket_id"]
            self.connected.set()
        self._events[frame["event"]].put((frame["event"], frame["data"]))

    def on_close(self, app: Any, status: int | None, reason: Any) -> None:
        self.close_status = status
        self.closed.set()

    def close(self) -> None:
        self.app.close()


def make_virtual_socket(
    host: str, port: int, path: str = "/ws"
) -> tuple[Any, Callable[[], VirtualSocket]]:
    """``(ws_app, connect_socket)``: ``connect_socket()`` connects and returns the socket."""
    from websocket import WebSocketApp

    holder: list[VirtualSocket] = []

    def on_message(app: Any, text: str) -> None:
        holder[0].on_message(app, text)

    def on_close(app: Any, status: Any, reason: Any) -> None:
        holder[0].on_close(app, status, reason)

    app = WebSocketApp(f"ws://{host}:{port}{path}", on_message=on_message, on_close=on_close)
    holder.append(VirtualSocket(app))

    def connect_socket(timeout: float = TIMEOUT) -> VirtualSocket:
        start_thread(app.run_forever, f"virtual-socket-{port}")
        if not holder[0].connected.wait(timeout):
            app.close()
            raise TimeoutError(f"no `connected` event from ws://{host}:{port}{path}")
        return holder[0]

    return app, connect_socket
