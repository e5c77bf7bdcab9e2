"""Standalone RPC clients: call services from code that is not a service.

Unlike nameko 2.14's, a client here is safe to share between threads (one
reply queue and one consumer per client; replies routed by correlation id),
and works without ``with``: ``start()``/``stop()``, or simply use it, since
the first attribute access starts it.
"""

from __future__ import annotations

from typing import Any

from nameko import serialization
from nameko._concurrency import Lock
from nameko._ids import new_id
from nameko._messaging.connection import config_with_uri, open_broker
from nameko._protocol.calls import make_call_id
from nameko._protocol.names import rpc_exchange_name
from nameko._rpc.caller import RpcCaller
from nameko._rpc.client import ClusterProxy, ServiceProxy
from nameko._rpc.replies import ReplyQueue
from nameko._runtime.extensions import Entrypoint
from nameko.constants import CALL_ID_STACK_CONTEXT_KEY

__all__ = [
    "ClusterRpcClient",
    "ClusterRpcProxy",
    "ServiceRpcClient",
    "ServiceRpcProxy",
    "StandaloneProxyBase",
]

STOPPED_MESSAGE = "This consumer has been stopped, and can no longer be used"


class _CallerContext:
    """Stands in for a worker context: the headers every call carries. Each
    call gets a fresh call id (nameko 2.14 reused one per client)."""

    def __init__(self, container: Any, context_data: dict[str, Any] | None) -> None:
        self.container = container
        self.config = container.config
        self.data = dict(context_data or {})

    @property
    def context_data(self) -> dict[str, Any]:
        data = dict(self.data)
        call_id = make_call_id(self.container.service_name, "call", new_id())
        data[CALL_ID_STACK_CONTEXT_KEY] = [call_id]
        return data


class StandaloneProxyBase:
    class ServiceContainer:
        """The minimum of a container a client needs."""

        service_name = "standalone_rpc_proxy"

        def __init__(self, config: dict[str, Any]) -> None:
            self.config = config
            self.shared_extensions: dict[Any, Any] = {}

    class Dummy(Entrypoint):
        method_name = "call"

    def __init__(
        self,
        config: dict[str, Any],
        context_data: dict[str, Any] | None = None,
        timeout: float | None = None,
        reply_listener_cls: Any = None,  # accepted for nameko compatibility
        **options: Any,
    ) -> None:
        self._container = self.ServiceContainer(config)
        self._worker_ctx = _CallerContext(self._container, context_data)
        self.timeout = timeout
        self._options = options
        self._lock = Lock()
        self._broker: Any = None
        self._replies: ReplyQueue | None = None
        self._proxy: Any = None

    @property
    def config(self) -> dict[str, Any]:
        return self._container.config

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Any:
        """Connect and return the proxy object (as nameko does, not ``self``)."""
        with self._lock:
            if self._proxy is None:
                self._proxy = self._connect()
            return self._proxy

    def _connect(self) -> Any:
        config = self.config
        serializer, accept = serialization.setup(config)
        owner = self._container.service_name
        self._broker = open_broker(config, f"nameko:{owner}")
        try:
            self._replies = ReplyQueue(self._broker, rpc_exchange_name(config), owner, accept)
            self._replies.start()
        except BaseException:
            self._broker.close()
            raise
        caller = RpcCaller(
            self._broker, self._replies, serializer, timeout=self.timeout, **self._options
        )
        return self._make_proxy(caller)

    def _make_proxy(self, caller: RpcCaller) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        """Disconnect; calls still waiting fail with `RuntimeError`."""
        with self._lock:
            replies, broker = self._replies, self._broker
            self._replies = self._broker = None
            self._proxy = _Stopped()
        if replies is not None:
            replies.stop(RuntimeError(STOPPED_MESSAGE))
        if broker is not None:
            broker.close()

    def __getattr__(self, name: str) -> Any:
        # `ClusterRpcProxy(config).service.method()` without start(): start on
        # first use (seed 004's FastAPI pattern). Private names never start it.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.start(), name)

    def __getitem__(self, name: str) -> Any:
        return self.start()[name]


class _Stopped:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(STOPPED_MESSAGE)

    def __getitem__(self, name: str) -> Any:
        raise RuntimeError(STOPPED_MESSAGE)


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


class ClusterRpcClient(ClusterRpcProxy):
    """nameko 3 name; also takes ``uri=`` instead of a config dict."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *args: Any,
        uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config_with_uri(config, uri), *args, **kwargs)


class ServiceRpcClient(ServiceRpcProxy):
    """nameko 3 name; also takes ``uri=`` instead of a config dict."""

    def __init__(
        self,
        service_name: str,
        config: dict[str, Any] | None = None,
        *args: Any,
        uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(service_name, config_with_uri(config, uri), *args, **kwargs)
