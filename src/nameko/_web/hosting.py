"""Several services, one address: a process-wide table of sites and their routes.

nameko 2.14 gives every container its own listening socket with
SO_REUSEPORT, so two services on one port split requests at random and each
answers 404 for the other's routes. Here the first `WebServer` on an address
opens its `Site`; later ones mount their routes on the same `RouteTable`,
which sends each request to the server whose rule matches. A route claimed
by two servers is refused at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from nameko._concurrency import Lock
from nameko._redaction import redact_target
from nameko._web.addresses import BindAddress
from nameko._web.http11 import HttpError, HttpRequest, simple_response
from nameko._web.limits import WebLimits
from nameko._web.site import Reply, Site, Takeover
from nameko._web.wsgi import WsgiApp, build_environ, call_wsgi
from nameko.exceptions import ConfigurationError

__all__ = ["Hosted", "Mount", "RouteTable", "acquire", "release", "stop_accepting"]

_log = logging.getLogger("nameko.web.server")

TAKEOVER_ENVIRON_KEY = "shimeji.takeover"


INLINE_ENVIRON_KEY = "shimeji.inline_container"


@dataclass
class Mount:
    name: str
    rules: list[Rule]
    app: WsgiApp
    container: Any = None  # requests run on its worker pool when it is alone on the site
    queue_limit: int | None = None
    submit: Any = field(init=False, default=None)  # built once, used per request

    def __post_init__(self) -> None:
        if self.container is not None:
            self.submit = partial(self.container.submit_job, max_pending=self.queue_limit)


class RouteTable:
    """Which mounted app serves a request; rebuilt whenever a server comes or goes."""

    def __init__(self) -> None:
        self._mounts: dict[Any, Mount] = {}
        self._map = Map()
        self._single: Mount | None = None
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._mounts)

    def mount(self, key: Any, mount: Mount) -> None:
        with self._lock:
            _check_conflicts(mount.name, mount.rules, self._mounts.values())
            self._mounts[key] = mount
            self._rebuild()

    def unmount(self, key: Any) -> bool:
        """Remove ``key``'s routes; True when nothing is mounted any more."""
        with self._lock:
            self._mounts.pop(key, None)
            self._rebuild()
            return not self._mounts

    def _rebuild(self) -> None:
        rules = []
        for key, mount in self._mounts.items():
            for rule in mount.rules:
                copy = rule.empty()
                copy.endpoint = key
                rules.append(copy)
        self._map = Map(rules)
        mounts = list(self._mounts.values())
        # one server on the address (the usual case): it routes by itself
        self._single = mounts[0] if len(mounts) == 1 else None

    @property
    def single(self) -> Mount | None:
        return self._single

    def app_for(self, environ: dict[str, Any]) -> WsgiApp:
        single = self._single
        if single is not None:
            return single.app
        try:
            key, _ = self._map.bind_to_environ(environ).match()
        except HTTPException as exc:  # 404, 405, redirects: werkzeug's own answers
            return exc  # an HTTPException is a WSGI app
        mount = self._mounts.get(key)
        return mount.app if mount is not None else _gone


def _gone(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Retry-After", "1")])
    return [b"Service Unavailable: the service is stopping\n"]


def _check_conflicts(name: str, rules: list[Rule], mounts: Any) -> None:
    claimed = [(m.name, r) for m in mounts for r in m.rules]
    for i, rule in enumerate(rules):
        claimed_here = [(name, r) for r in rules[:i]]
        for other_name, other in claimed + claimed_here:
            if _same_route(rule, other):
                methods = ",".join(sorted((rule.methods or set()) & (other.methods or set())))
                raise ConfigurationError(
                    f"route `{methods or '*'} {rule.rule}` is claimed twice: "
                    f"by `{other_name}` and by `{name}`"
                )


def _same_route(a: Rule, b: Rule) -> bool:
    if a.rule != b.rule or a.websocket != b.websocket:
        return False
    if a.methods is None or b.methods is None:
        return True
    return bool((a.methods - {"HEAD"}) & (b.methods - {"HEAD"}))


class Hosted:
    """A `Site` and the routes of every server mounted on it."""

    def __init__(self, address: BindAddress, limits: WebLimits) -> None:
        self.address = address
        self.routes = RouteTable()
        self.site = Site(address, limits, self._serve, self._pick)
        self.users = 0
        self.site.start()  # only now: its first request uses `self.site`

    def _pick(self, request: HttpRequest) -> tuple[Any, Any]:
        """Run on the container's own pool when one service owns the address.

        Then the entrypoint runs its worker on that same thread: one hand-off
        per request instead of three. With several services on the address
        the route decides the container, so the site's pool runs the request
        and the entrypoint queues the worker as any other does.
        """
        single = self.routes.single
        if single is None or single.submit is None:
            return None, None
        return single.submit, single

    def _serve(
        self, request: HttpRequest, peer: Any, takeover: Takeover | None, target: Any
    ) -> Reply | None:
        keep_alive = request.keep_alive and takeover is None
        try:
            environ = build_environ(request, (self.address.address, self.site.port), peer)
        except HttpError as exc:
            return Reply(simple_response(exc.status, exc.reason, exc.detail), False)
        if takeover is not None:
            environ[TAKEOVER_ENVIRON_KEY] = takeover
        if target is not None:
            environ[INLINE_ENVIRON_KEY] = target.container
            app = target.app
        else:
            app = self.routes.app_for(environ)
        status, data = call_wsgi(app, environ, keep_alive)
        if takeover is not None and takeover.accepted:
            return None
        access = None
        if _log.isEnabledFor(logging.INFO):
            target = redact_target(environ["REQUEST_URI"])  # no ?token=... in the log
            access = (peer[0] if peer else "-", request.method, target, status[:3])
        return Reply(data, keep_alive, access)


_hosted: dict[BindAddress, Hosted] = {}
_hosted_lock = Lock()


def acquire(address: BindAddress, limits: WebLimits) -> Hosted:
    """The site on ``address``, opened by the first caller."""
    with _hosted_lock:
        hosted = _hosted.get(address)
        if hosted is None:
            hosted = _hosted[address] = Hosted(address, limits)
        elif hosted.site.limits != limits:
            _log.warning(
                "%s:%s is already served; its first service's WEB_* limits apply",
                address.address or "0.0.0.0",
                address.port,
            )
        hosted.users += 1
        return hosted


def stop_accepting(hosted: Hosted) -> None:
    """The last server on ``hosted`` is stopping: close the listener first."""
    with _hosted_lock:
        if _hosted.get(hosted.address) is hosted:
            del _hosted[hosted.address]  # a new server on this address opens a new site
    hosted.site.stop_accepting()


def release(hosted: Hosted, drain_timeout: float) -> None:
    with _hosted_lock:
        hosted.users -= 1
        last = hosted.users == 0
        if last and _hosted.get(hosted.address) is hosted:
            del _hosted[hosted.address]
    if last and not hosted.site.drain(drain_timeout) and drain_timeout > 0:
        _log.warning("web server stopped with requests still unanswered")
