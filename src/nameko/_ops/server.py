"""A small HTTP/1.0 server on one thread, for probes and scrapes (D26).

Not the ``@http`` server (`nameko._web`): the operations endpoint must keep
answering when the services' own HTTP is saturated or draining, has a
handful of requests a minute, and should not make a service that has no
``@http`` entrypoint load werkzeug. The standard library's `http.server`
answers one request at a time on the ``ops-http`` thread; each response is
small and built from counters, and a client that stalls is dropped after
`REQUEST_TIMEOUT` seconds of silence.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from nameko._concurrency import Event, start_thread

__all__ = ["REQUEST_TIMEOUT", "OpsServer", "Response"]

_log = logging.getLogger("nameko.ops")

REQUEST_TIMEOUT = 5.0  # seconds of silence before a client is dropped

Response = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Response]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT  # applied to the socket: a stalled client can't hold the thread
    server_version = "shimeji-ops"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            status, kind, body = 404, "text/plain", b"not found: /healthz /readyz /metrics\n"
        else:
            try:
                status, kind, body = route()
            except Exception:
                _log.exception("the ops endpoint failed on %s", self.path)
                status, kind, body = 500, "text/plain", b"internal error (logged)\n"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)  # probes would flood INFO


class _Server(HTTPServer):
    routes: dict[str, Route]

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("ops request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class OpsServer:
    """Serves ``routes`` (path -> function) on ``host:port`` until `close`."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        server_cls = _Server6 if ":" in host else _Server
        self._server = server_cls((host, port), _Handler)  # OSError if the address is taken
        self._server.routes = routes
        self._closing = False
        self._stopped = Event()
        start_thread(self._serve, "ops-http")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def _serve(self) -> None:
        # Blocks in accept until a request comes: no wake-ups while idle (the
        # library's serve_forever polls its shutdown flag). `close` wakes it.
        try:
            while not self._closing:
                self._server.handle_request()
        finally:
            self._stopped.set()

    def close(self) -> None:
        self._closing = True
        try:  # a connection of our own ends the wait in accept
            socket.create_connection(self.address, timeout=1).close()
        except OSError:
            pass
        if not self._stopped.wait(REQUEST_TIMEOUT + 1):
            _log.warning("the ops endpoint did not stop within %ss", REQUEST_TIMEOUT + 1)
        self._server.server_close()
