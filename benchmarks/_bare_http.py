"""A bare HTTP server with no framework: the floor for ``bench_http.py``.

``--server site`` (the default) runs shimeji's own web server core,
`nameko._web.site.Site`, with a handler that answers every request with the
same small text response: no container, no entrypoint, no WSGI, no routing.
What shimeji's ``@http`` echo adds on top of this is the framework's cost.

``--server asyncio`` is a second floor that shares no code with shimeji's I/O
loop: asyncio with the same httptools parser, answering from the event loop.

    .venv/bin/python benchmarks/_bare_http.py --port 8000 [--server asyncio]

Runs until SIGTERM or SIGINT. Needs shimeji's virtualenv (for
`nameko._web` and httptools).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from typing import Any

import httptools

from nameko._web.addresses import BindAddress
from nameko._web.http11 import HttpRequest, render_response
from nameko._web.limits import WebLimits
from nameko._web.site import Reply, Site, Takeover

BODY = b"hi"  # what the echo service answers to /echo/hi
HEADERS = [("Content-Type", "text/plain; charset=utf-8")]  # as werkzeug's text responses


def response(keep_alive: bool) -> bytes:
    # Rendered per request (render_response caches the Date line per second),
    # so the floor pays for a correct response head like the framework does.
    return render_response("200 OK", HEADERS, BODY, keep_alive=keep_alive, head=False)


# -- shimeji's Site ------------------------------------------------------------------------


def handle(request: HttpRequest, peer: Any, takeover: Takeover | None, target: Any) -> Reply:
    keep_alive = request.keep_alive and takeover is None
    return Reply(response(keep_alive), keep_alive)


def pick(request: HttpRequest) -> tuple[None, None]:
    return None, None  # run the handler on the site's own request pool


def serve_site(port: int) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    site = Site(BindAddress("127.0.0.1", port), WebLimits(), handle, pick)
    site.start()
    stop.wait()
    site.drain(timeout=5.0)


# -- asyncio + httptools ---------------------------------------------------------------------


class EchoProtocol(asyncio.Protocol):
    """One connection; answers each complete request at once, in order."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_complete(self) -> None:
        assert self.transport is not None
        keep_alive = self.parser.should_keep_alive()
        self.transport.write(response(keep_alive))
        if not keep_alive:
            self.transport.close()


async def serve_asyncio(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(EchoProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=("site", "asyncio"), default="site")
    args = parser.parse_args()
    if args.server == "site":
        serve_site(args.port)
    else:
        asyncio.run(serve_asyncio(args.port))


if __name__ == "__main__":
    main()
