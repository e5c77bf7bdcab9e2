"""`WebServer`: the shared extension that puts a container's routes on the air.

Each container gets one `WebServer` (a shared extension); its entrypoints
register as providers. At start it builds the url map from them and mounts
it, with its WSGI app, on the process's site for ``WEB_SERVER_ADDRESS``
(`nameko._web.hosting`). When its last provider stops it unmounts; when the
last server on the address unmounts the listener closes, and `stop` waits
for the requests in flight to be answered.

Left out from nameko 2.14, being eventlet's: ``run``, ``process_request``,
``get_wsgi_server`` and ``HttpOnlyProtocol``. ``get_wsgi_app`` is the hook
for WSGI middleware, as in nameko.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request

from nameko._listening import CannotListen, format_address
from nameko._tracing import HTTP_ROUTE_ENVIRON_KEY, tracing_for
from nameko._web import hosting
from nameko._web.addresses import (
    DEFAULT_WEB_SERVER_ADDRESS,
    WEB_SERVER_CONFIG_KEY,
    BindAddress,
    parse_address,
)
from nameko._web.limits import WebLimits
from nameko.extensions import ProviderCollector, SharedExtension

__all__ = ["WebServer", "WsgiApp"]

DRAIN_TIMEOUT = 10.0  # workers are done by now; this only covers writing responses

_log = logging.getLogger("nameko.web.server")


class WsgiApp:
    """The WSGI app of one `WebServer`: route, then hand the request to its entrypoint."""

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.url_map = server.make_url_map()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        tracing = self.server.tracing
        if tracing is None:
            response = self.respond(environ)
        else:  # a server span, current while the request is routed and run
            response = tracing.serve_http(environ, partial(self.respond, environ))
        return response(environ, start_response)

    def respond(self, environ: dict[str, Any]) -> Any:
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            rule, values = adapter.match(return_rule=True)
            environ[HTTP_ROUTE_ENVIRON_KEY] = rule.rule  # names the request's span
            # nameko's attribute on werkzeug's own Request class (not a subclass,
            # as in 2.14), which does not declare it
            request.path_values = values  # type: ignore[attr-defined]
            return rule.endpoint.handle_request(request)
        except HTTPException as exc:
            return exc


class WebServer(ProviderCollector, SharedExtension):
    tracing: Any = None  # TRACING on: `nameko._tracing.otel.Tracing` (set up from the config)

    def __init__(self) -> None:
        super().__init__()
        self._hosted: hosting.Hosted | None = None
        self._mounted = False
        self.url_map: Map | None = None
        self._limits: WebLimits | None = None

    @property
    def bind_addr(self) -> BindAddress:
        config = self.container.config
        return parse_address(config.get(WEB_SERVER_CONFIG_KEY) or DEFAULT_WEB_SERVER_ADDRESS)

    @property
    def limits(self) -> WebLimits:
        """The ``WEB_*`` limits, read from config once."""
        if self._limits is None:
            self._limits = WebLimits.from_config(self.container.config)
        return self._limits

    @property
    def queue_limit(self) -> int:
        return self.limits.queue_limit

    @property
    def port(self) -> int | None:
        """The port listened on (useful with port 0), once started."""
        return self._hosted.site.port if self._hosted is not None else None

    def setup(self) -> None:
        # a bad address or limit fails set-up, not the first request
        self.bind_addr  # noqa: B018
        self.limits  # noqa: B018
        self.tracing = tracing_for(self.container.config)

    def start(self) -> None:
        if self._hosted is not None:
            return
        self.url_map = self.make_url_map()
        address = self.bind_addr
        try:
            hosted = hosting.acquire(address, self.limits)
        except OSError as exc:
            fix = f"set {WEB_SERVER_CONFIG_KEY} to a free [host:]port"
            raise CannotListen(address.address, address.port, exc, fix) from None
        try:
            mount = hosting.Mount(
                name=self.container.service_name,
                rules=list(self.url_map.iter_rules()),
                app=self.get_wsgi_app(),
                container=self.container,
                queue_limit=self.queue_limit,
            )
            hosted.routes.mount(self, mount)
        except BaseException:
            hosting.release(hosted, 0)
            raise
        self._hosted, self._mounted = hosted, True
        _log.info(
            "%s: HTTP server listening on %s",
            self.container.service_name,
            format_address(address.address, hosted.site.port),
        )

    def make_url_map(self) -> Map:
        return Map([provider.get_url_rule() for provider in self._providers])

    def get_wsgi_app(self) -> Any:
        """The WSGI app requests go to; override to wrap it in middleware."""
        return WsgiApp(self)

    def context_data_from_headers(self, request: Request) -> dict[str, Any]:
        """Context data for a request's worker; nameko takes none from HTTP."""
        return {}

    def unregister_provider(self, provider: Any) -> None:
        super().unregister_provider(provider)
        if not self._providers:
            self._unmount()

    def _unmount(self) -> None:
        hosted = self._hosted
        if hosted is None or not self._mounted:
            return
        self._mounted = False
        if hosted.routes.unmount(self):
            hosting.stop_accepting(hosted)

    def stop(self) -> None:
        self._unmount()
        super().stop()
        self._release(DRAIN_TIMEOUT)

    def kill(self) -> None:
        self._unmount()
        self._release(0)

    def _release(self, timeout: float) -> None:
        hosted, self._hosted = self._hosted, None
        if hosted is not None:
            hosting.release(hosted, timeout)
