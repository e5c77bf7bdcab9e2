"""What ``nameko shell`` adds around its RPC proxy.

``n.rpc`` is a started `ClusterProxy` seen through `ShellRpc`, which adds
three things a person at a prompt needs and a program does not:

* a call timeout (``--timeout``), so a call to a service whose queue exists
  but has no running instance ends with ``no reply from 'svc' in 30 s: is an
  instance running?`` instead of hanging;
* `dir()` of ``n.rpc`` and ``n.rpc.<service>`` lists the services and methods
  the shell knows of, which is what tab completion (readline, IPython) reads;
* `UnknownService` and `MethodNotFound` suggest close names (``did you
  mean 'inventory'?``) from the names the shell knows; the error on the
  wire is nameko's, only the shell's text adds to it;
* a call to a service whose instances announced they stopped ends within
  a second (`ServiceStopped`) instead of waiting out the timeout: the shell
  waits for the reply in short slices and looks at the announcements
  between them.

The shell knows services and their ``@rpc`` methods from the instances'
announcements (`nameko._presence`: it asks every instance to announce itself
when it starts), from the calls it made in this session and, when
RabbitMQ's management API answers, from the ``rpc-<service>`` queues that
have a consumer (services only: the broker cannot tell methods; this covers
services run without presence, e.g. by nameko 2.14).
"""

from __future__ import annotations

import base64
import difflib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from nameko._concurrency import Event
from nameko.exceptions import MethodNotFound, RpcTimeout, UnknownService

__all__ = [
    "Announced",
    "Catalogue",
    "NoReply",
    "ServiceStopped",
    "ShellMethodNotFound",
    "ShellRpc",
    "ShellUnknownService",
    "management_api_url",
    "rpc_services_from_management_api",
]

RPC_QUEUE_PREFIX = "rpc-"


class NoReply(RpcTimeout):
    """A shell call that got no reply within the shell's timeout."""

    def __init__(self, service: str, timeout: float) -> None:
        super().__init__(timeout)
        self.service, self.timeout = service, timeout

    def __str__(self) -> str:
        return f"no reply from {self.service!r} in {self.timeout:g} s: is an instance running?"


class ServiceStopped(NoReply):
    """A shell call to a service whose every instance announced it stopped."""

    def __str__(self) -> str:
        return (
            f"no reply from {self.service!r}: its instances announced they stopped "
            "(the request stays queued for the next instance)"
        )


#: how often a waiting shell call looks at the announcements, after a first
#: wait long enough for an instance that just started to answer, or announce
#: itself (an announcer reports a new state within a quarter second)
STOPPED_POLL = 0.1
STOPPED_GRACE = 0.5


def wait_watching(reply: Any, stopped: Callable[[], bool], timeout: float | None) -> Any:
    """``reply.result()``, given up with `ServiceStopped` as soon as
    ``stopped()`` says no instance will answer (the late reply is dropped),
    and with `RpcTimeout` after ``timeout`` seconds, as the proxy would."""
    pending: Any = getattr(reply, "reply_event", None)
    outcome = getattr(pending, "outcome", None)
    if outcome is None:  # not a reply of ours: wait as it does
        return reply.result()
    deadline = None if timeout is None else time.monotonic() + timeout
    wait = STOPPED_GRACE
    while not outcome.wait(wait if deadline is None else min(wait, deadline - time.monotonic())):
        if stopped():
            pending.discard()
            raise ServiceStopped("", timeout or 0)
        if deadline is not None and time.monotonic() >= deadline:
            pending.discard()
            raise RpcTimeout(timeout)
        wait = STOPPED_POLL
    return reply.result()


class ShellUnknownService(UnknownService):
    """`UnknownService` with the close names the shell knows of."""

    def __init__(self, service: str, suggestions: list[str]) -> None:
        super().__init__(service)
        self.suggestions = suggestions

    def __str__(self) -> str:
        text = super().__str__()
        if not self.suggestions:
            return text
        return f"{text}: did you mean {' or '.join(map(repr, self.suggestions))}?"


class ShellMethodNotFound(MethodNotFound):
    """`MethodNotFound` (same ``args``) with the service's close method names,
    or the ones it has when none is close."""

    def __init__(self, method: str, service: str, suggestions: list[str], known: list[str]):
        super().__init__(method)
        self.method, self.service = method, service
        self.suggestions, self.known = suggestions, known

    def __str__(self) -> str:
        if self.suggestions:
            return f"{self.method}: did you mean {' or '.join(map(repr, self.suggestions))}?"
        if self.known:
            return f"{self.method}: known methods of {self.service!r}: {', '.join(self.known)}"
        return self.method


MAX_LISTED = 10  # method names listed when none is close


Names = Mapping[str, Iterable[str]]  # service -> its methods


class Catalogue:
    """The services and methods this shell knows of.

    ``discover`` (e.g. the management API) is asked once, when a name is
    first needed, so a shell whose broker has no API starts no slower.
    ``announced`` (service -> methods, from presence) is asked each time:
    instances come and go while the shell runs."""

    def __init__(
        self,
        discover: Callable[[], Iterable[str]] = tuple,
        announced: Callable[[], Names] | None = None,
        stopped: Callable[[str], bool] | None = None,
    ) -> None:
        self._methods: dict[str, set[str]] = {}
        self._discover: Callable[[], Iterable[str]] | None = discover
        self._announced = announced
        self.stopped = stopped  # service -> its instances said they stopped

    def saw(self, service: str, method: str) -> None:
        self._methods.setdefault(service, set()).add(method)

    def _known(self) -> dict[str, set[str]]:
        self._discovered()
        known = {name: set(methods) for name, methods in self._methods.items()}
        for name, methods in (self._announced() if self._announced else {}).items():
            known.setdefault(name, set()).update(methods)
        return known

    def services(self) -> list[str]:
        return sorted(self._known())

    def methods(self, service: str) -> list[str]:
        return sorted(self._known().get(service, ()))

    def close_to(self, service: str) -> list[str]:
        known = [name for name in self._known() if name != service]
        return difflib.get_close_matches(service, known, n=3, cutoff=0.6)

    def method_not_found(self, service: str, method: str) -> ShellMethodNotFound:
        known = [name for name in self.methods(service) if name != method]
        close = difflib.get_close_matches(method, known, n=3, cutoff=0.6)
        listed = known if len(known) <= MAX_LISTED else []
        return ShellMethodNotFound(method, service, close, listed)

    def _discovered(self) -> None:
        discover, self._discover = self._discover, None
        for name in discover() if discover else ():
            self._methods.setdefault(name, set())


class Announced:
    """Services and their ``@rpc`` methods, as their instances announce them.

    Built when the shell starts, it sends a discovery request at once; the
    first question waits for the answers until ``settle`` seconds after that
    request (a person reaches for Tab later than that; a script may not)."""

    def __init__(self, roster: Any, settle: float = 0.5) -> None:
        self._roster = roster
        self._ready_at = time.monotonic() + settle
        try:
            roster.discover()
        except Exception:  # reconnecting: announcements still come every interval
            self._ready_at = 0.0

    def stopped(self, service: str) -> bool:
        return bool(self._roster.stopped(service))

    def __call__(self) -> dict[str, list[str]]:
        left = self._ready_at - time.monotonic()
        if left > 0:
            Event().wait(left)
        return {
            service: [ep["name"] for ep in entrypoints if ep.get("type") == "rpc"]
            for service, entrypoints in self._roster.services().items()
            if any(ep.get("type") == "rpc" for ep in entrypoints)
        }


class ShellRpc:
    """``n.rpc``: the cluster proxy with completion and the shell's errors."""

    def __init__(self, cluster: Any, catalogue: Catalogue, timeout: float | None) -> None:
        self._cluster, self._catalogue, self._timeout = cluster, catalogue, timeout

    def __getattr__(self, name: str) -> _ShellService:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> _ShellService:
        return _ShellService(self._cluster[name], name, self._catalogue, self._timeout)

    def __dir__(self) -> list[str]:
        return self._catalogue.services()

    def __repr__(self) -> str:
        return f"<n.rpc: {len(self._catalogue.services())} services known>"


class _ShellService:
    def __init__(self, proxy: Any, name: str, catalogue: Catalogue, timeout: float | None) -> None:
        self._proxy, self._name = proxy, name
        self._catalogue, self._timeout = catalogue, timeout

    def __getattr__(self, method: str) -> _ShellMethod:
        if method.startswith("__"):
            raise AttributeError(method)
        return self[method]

    def __getitem__(self, method: str) -> _ShellMethod:
        return _ShellMethod(self._proxy[method], method, self)

    def __dir__(self) -> list[str]:
        return self._catalogue.methods(self._name)

    def __repr__(self) -> str:
        return f"<n.rpc.{self._name}>"

    def _translated(self, method: str, call: Callable[[], Any]) -> Any:
        """``call()``, with the shell's errors for a silent or unknown service."""
        try:
            result = call()
        except ServiceStopped:
            raise ServiceStopped(self._name, self._timeout or 0) from None
        except RpcTimeout:
            raise NoReply(self._name, self._timeout or 0) from None
        except UnknownService:
            suggestions = self._catalogue.close_to(self._name)
            raise ShellUnknownService(self._name, suggestions) from None
        except MethodNotFound as exc:
            if exc.args != (method,):  # not the plain "no such method" of nameko
                raise
            raise self._catalogue.method_not_found(self._name, method) from None
        self._catalogue.saw(self._name, method)
        return result

    def _result(self, reply: Any) -> Any:
        stopped = self._catalogue.stopped
        if stopped is None:
            return reply.result()
        return wait_watching(reply, partial(stopped, self._name), self._timeout)


class _ShellMethod:
    def __init__(self, proxy: Any, method: str, owner: _ShellService) -> None:
        self._proxy, self._method, self._owner = proxy, method, owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._owner
        return self._run(lambda: owner._result(self._proxy.call_async(*args, **kwargs)))

    def call_async(self, *args: Any, **kwargs: Any) -> _ShellReply:
        reply = self._run(lambda: self._proxy.call_async(*args, **kwargs))
        return _ShellReply(reply, self)

    def _run(self, call: Callable[[], Any]) -> Any:
        return self._owner._translated(self._method, call)

    def __repr__(self) -> str:
        return f"<n.rpc.{self._owner._name}.{self._method}>"


class _ShellReply:
    def __init__(self, reply: Any, method: _ShellMethod) -> None:
        self._reply, self._method = reply, method

    def result(self) -> Any:
        return self._method._run(lambda: self._method._owner._result(self._reply))


def management_api_url(amqp_uri: str) -> str:
    """The management API's queue listing for ``amqp_uri``'s vhost (port 15672)."""
    parts = urlsplit(amqp_uri)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return f"http://{parts.hostname or 'localhost'}:15672/api/queues/{quote(vhost, safe='')}"


def rpc_services_from_management_api(
    amqp_uri: str, api_url: str | None = None, timeout: float = 1.0
) -> list[str]:
    """Services with a consumer on their ``rpc-`` queue, or ``[]`` if the API is silent.

    The API is optional (the plugin is often off): any failure means "the
    cluster cannot tell", never an error at the prompt."""
    from urllib.request import Request, urlopen  # here: `nameko run` imports this module

    parts = urlsplit(amqp_uri)
    credentials = f"{parts.username or 'guest'}:{parts.password or 'guest'}"
    request = Request(
        f"{api_url or management_api_url(amqp_uri)}?columns=name,consumers",
        headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
    )
    try:
        with urlopen(request, timeout=timeout) as response:
            queues = json.load(response)
    except (OSError, ValueError):
        return []
    return sorted(
        queue["name"][len(RPC_QUEUE_PREFIX) :]
        for queue in queues
        if isinstance(queue, dict)
        and str(queue.get("name", "")).startswith(RPC_QUEUE_PREFIX)
        and queue.get("consumers")
    )
