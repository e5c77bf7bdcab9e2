"""``nameko dashboard``'s server: a page of the live cluster and its JSON.

One `Roster` listens to announcements; a thread (``dashboard-discover``)
sends a discovery request every ``refresh`` seconds, so stats are at most
that old (a service announces on its own only every ``PRESENCE_INTERVAL``).
The page (`nameko._presence.page`, vanilla JS, no build step) polls
``/api/cluster`` once a second and redraws. The HTTP side is the project's
own `Site` (D19: its I/O thread, its limits) running a tiny WSGI app on the
site's request pool: no container, no broker work per request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from nameko._concurrency import Event, start_thread
from nameko._presence.page import PAGE
from nameko._presence.rates import cluster_view
from nameko._presence.roster import Roster
from nameko._urls import sanitize_url
from nameko._web.addresses import BindAddress
from nameko._web.http11 import HttpError, HttpRequest, simple_response
from nameko._web.limits import WebLimits
from nameko._web.site import Reply, Site, Takeover
from nameko._web.wsgi import build_environ, call_wsgi
from nameko.constants import AMQP_URI_CONFIG_KEY

__all__ = ["DEFAULT_REFRESH", "Dashboard"]

_log = logging.getLogger("nameko.presence")

DEFAULT_REFRESH = 2.0
StartResponse = Callable[..., Any]


class Dashboard:
    def __init__(
        self, config: Mapping[str, Any], address: BindAddress, refresh: float = DEFAULT_REFRESH
    ) -> None:
        self.config = config
        self.refresh = refresh
        self.broker = sanitize_url(str(config.get(AMQP_URI_CONFIG_KEY, "")))
        self.roster = Roster(config)
        self._closing = Event()
        self._site = Site(address, WebLimits(max_connections=64), self._serve, _own_pool)
        self.port = self._site.port

    def start(self) -> None:
        self.roster.start()
        start_thread(self._discover, "dashboard-discover")
        self._site.start()

    def close(self) -> None:
        self._closing.set()
        self._site.drain(2.0)
        self.roster.close()

    def _discover(self) -> None:
        while not self._closing.is_set():
            try:
                self.roster.discover()
            except Exception as exc:  # reconnecting: the page shows instances going silent
                _log.debug("dashboard: discovery not sent (%s)", exc)
            self._closing.wait(self.refresh)

    def view(self) -> dict[str, Any]:
        instances = [
            (seen.message, list(seen.history), seen.is_silent(self.refresh))
            for seen in self.roster.instances()
        ]
        return {
            "broker": self.broker,
            "refresh": self.refresh,
            "time": time.time(),
            "services": cluster_view(instances),
        }

    # -- HTTP ------------------------------------------------------------------

    def _serve(
        self, request: HttpRequest, peer: Any, takeover: Takeover | None, target: Any
    ) -> Reply | None:
        try:
            environ = build_environ(request, (self._site.address.address, self.port), peer)
        except HttpError as exc:
            return Reply(simple_response(exc.status, exc.reason, exc.detail), False)
        _, data = call_wsgi(self.app, environ, request.keep_alive)
        return Reply(data, request.keep_alive)

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", "text/plain", b"GET only\n")
        if path == "/":
            return _answer(start_response, "200 OK", "text/html; charset=utf-8", PAGE.encode())
        if path == "/api/cluster":
            body = json.dumps(self.view()).encode()
            return _answer(start_response, "200 OK", "application/json", body)
        return _answer(start_response, "404 Not Found", "text/plain", b"not found\n")


def _own_pool(request: HttpRequest) -> tuple[None, None]:
    return None, None  # every request on the site's own request pool


def _answer(start_response: StartResponse, status: str, kind: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", kind), ("Cache-Control", "no-store")])
    return [body]
