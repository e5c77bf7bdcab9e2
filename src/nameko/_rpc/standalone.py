"""Standalone RPC clients: call services from code that is not a service.

* nameko 2.x: ``ClusterRpcProxy(config, context_data=None, timeout=None)``
  and ``ServiceRpcProxy(service_name, config, ...)`` give 2.x proxies; the
  config may be left out (then nameko 3's global config is used).
* nameko 3: ``ClusterRpcClient(context_data=None, timeout=None, **options)``
  and ``ServiceRpcClient(service_name, ...)`` read the global config (``uri=``
  and friends override it) and give a `Client`.

Unlike nameko 2.14's, a client here is safe to share between threads (one
reply queue and one consumer per client; replies routed by correlation id),
and works without ``with``: ``start()``/``stop()``, or simply use it, since
the first attribute access starts it. The config is read when the client
starts, so a client made at import time sees ``config.setup`` done later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko import serialization
from nameko._concurrency import Lock
from nameko._global_config import given_or_global
from nameko._ids import new_id
from nameko._protocol.calls import make_call_id
from nameko._rpc.caller import RpcCaller
from nameko._rpc.client import Client, ClusterProxy, ServiceProxy
from nameko._rpc.link import CallerLink
from nameko._rpc.options import connection_config, split_publisher_options
from nameko._runtime.extensions import Entrypoint
from nameko.constants import CALL_ID_STACK_CONTEXT_KEY, HEADER_PREFIX

__all__ = [
    "ClusterRpcClient",
    "ClusterRpcProxy",
    "ServiceRpcClient",
    "ServiceRpcProxy",
    "StandaloneProxyBase",
]

STOPPED_MESSAGE = "This consumer has been stopped, and can no longer be used"
CLIENT_STOPPED_MESSAGE = "Stopped and can no longer be used"  # nameko 3's wording

_CALL_ID_STACK_HEADER = f"{HEADER_PREFIX}.{CALL_ID_STACK_CONTEXT_KEY}"


class _Standalone:
    """Lifecycle shared by both families: connect on `start` (or on first
    use), hand out the proxy object, fail waiting calls on `stop`."""

    owner = "standalone_rpc_proxy"  # names the reply queue and the connection
    stopped_message = STOPPED_MESSAGE

    def __init__(
        self,
        config: Mapping[str, Any] | None,
        timeout: float | None,
        options: Mapping[str, Any],
    ) -> None:
        self._given_config = config
        self.timeout = timeout
        self._connection_options, self._options = split_publisher_options(options)
        self._lock = Lock()
        self._link: CallerLink | None = None
        self._proxy: Any = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Any:
        """Connect and return the proxy object (as nameko does, not ``self``)."""
        with self._lock:
            if self._proxy is None:
                self._link = self._connect()
                self._proxy = self._make_proxy(self._link.caller)
            return self._proxy

    def _connect(self) -> CallerLink:
        config = connection_config(self._given_config, self._connection_options)
        serializer, accept = serialization.setup(config)
        options = {"timeout": self.timeout, **self._options}
        return CallerLink(config, self.owner, serializer, accept, **options)

    def _make_proxy(self, caller: RpcCaller) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        """Disconnect; calls still waiting (and later ones) fail with `RuntimeError`."""
        with self._lock:
            link, self._link = self._link, None
            self._proxy = _Stopped(self.stopped_message)
        if link is not None:
            link.stop(RuntimeError(self.stopped_message))

    def __getattr__(self, name: str) -> Any:
        # `ClusterRpcProxy(config).service.method()` without start(): start on
        # first use (seed 004's FastAPI pattern). Private names never start it.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.start(), name)

    def __getitem__(self, name: str) -> Any:
        return self.start()[name]


class _Stopped:
    def __init__(self, message: str) -> None:
        self._message = message

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise RuntimeError(self._message)

    def __getitem__(self, name: str) -> Any:
        raise RuntimeError(self._message)


# -- nameko 2.x ---------------------------------------------------------------


class _CallerContext:
    """Stands in for a worker context: the headers every call carries. Each
    call gets a fresh call id (nameko 2.14 reused one per client)."""

    def __init__(self, container: Any, context_data: Mapping[str, Any] | None) -> None:
        self.container = container
        self.data = dict(context_data or {})

    @property
    def config(self) -> Mapping[str, Any]:
        return self.container.config

    @property
    def context_data(self) -> dict[str, Any]:
        data = dict(self.data)
        call_id = make_call_id(self.container.service_name, "call", new_id())
        data[CALL_ID_STACK_CONTEXT_KEY] = [call_id]
        return data


class StandaloneProxyBase(_Standalone):
    class ServiceContainer:
        """The minimum of a container a client needs."""

        service_name = "standalone_rpc_proxy"

        def __init__(self, config: Mapping[str, Any] | None) -> None:
            self._given = config
            self.shared_extensions: dict[Any, Any] = {}

        @property
        def config(self) -> Mapping[str, Any]:
            return given_or_global(self._given)

    class Dummy(Entrypoint):
        method_name = "call"

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        context_data: dict[str, Any] | None = None,
        timeout: float | None = None,
        reply_listener_cls: Any = None,  # accepted for nameko compatibility
        **options: Any,
    ) -> None:
        super().__init__(config, timeout, options)
        self._container = self.ServiceContainer(config)
        self._worker_ctx = _CallerContext(self._container, context_data)

    @property
    def config(self) -> Mapping[str, Any]:
        return self._container.config


class ServiceRpcProxy(StandaloneProxyBase):
    """A client for one service: ``with ServiceRpcProxy("svc", config) as svc: svc.method()``."""

    def __init__(self, service_name: str, *args: Any, **kwargs: Any) -> None:
        self.service_name = service_name
        super().__init__(*args, **kwargs)

    def _make_proxy(self, caller: RpcCaller) -> ServiceProxy:
        return ServiceProxy(self._worker_ctx, self.service_name, caller)


class ClusterRpcProxy(StandaloneProxyBase):
    """A client for every service: ``with ClusterRpcProxy(config) as rpc: rpc.svc.method()``."""

    def _make_proxy(self, caller: RpcCaller) -> ClusterProxy:
        return ClusterProxy(self._worker_ctx, caller)


# -- nameko 3 -----------------------------------------------------------------


class ClusterRpcClient(_Standalone):
    """``with ClusterRpcClient() as rpc: rpc.svc.method()`` (nameko 3).

    Config from the global ``nameko.config``; ``uri``, ``ssl`` and
    ``login_method`` override its connection settings, ``serializer`` and the
    other publisher options apply to the requests. ``timeout`` (seconds, per
    call) ends a wait with `RpcTimeout()`.
    """

    owner = "standalone_rpc_client"
    stopped_message = CLIENT_STOPPED_MESSAGE

    def __init__(
        self,
        context_data: dict[str, Any] | None = None,
        timeout: float | None = None,
        **publisher_options: Any,
    ) -> None:
        super().__init__(None, timeout, publisher_options)
        self.context_data = dict(context_data or {})
        self.client_id = new_id()

    def _make_proxy(self, caller: RpcCaller) -> Client:
        return Client(self._publisher(caller), caller.register_for_reply, self.context_data)

    def _publisher(self, caller: RpcCaller) -> Any:
        """``caller.publish`` with a fresh call id on every request."""
        prefix = f"{self.owner}.{self.client_id}."
        publish = caller.publish

        def publish_with_call_id(payload: Any, **kwargs: Any) -> None:
            headers = dict(kwargs.pop("extra_headers", None) or {})
            headers[_CALL_ID_STACK_HEADER] = [prefix + new_id()]
            publish(payload, extra_headers=headers, **kwargs)

        return publish_with_call_id


class ServiceRpcClient(ClusterRpcClient):
    """``with ServiceRpcClient("svc") as svc: svc.method()`` (nameko 3)."""

    def __init__(self, service_name: str, *args: Any, **kwargs: Any) -> None:
        self.service_name = service_name
        super().__init__(*args, **kwargs)

    def _make_proxy(self, caller: RpcCaller) -> Client:
        return super()._make_proxy(caller)[self.service_name]
