"""Calling other services from inside a service.

* `RpcProxy("svc")` (nameko 2.x) injects a 2.x `ServiceProxy`;
* `ServiceRpc("svc")` and `ClusterRpc()` (nameko 3) inject a `Client`.

All of them share the container's one `ReplyListener` (reply queue), unless
given ``uri=``/``ssl=``/``login_method=``: such a dependency talks to that
broker over a connection and reply queue of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nameko._concurrency import Lock
from nameko._messaging.connection import BrokerConnection
from nameko._protocol.names import rpc_exchange_name
from nameko._rpc.caller import RpcCaller
from nameko._rpc.client import Client, ServiceProxy
from nameko._rpc.link import CallerLink
from nameko._rpc.options import connection_config, split_publisher_options
from nameko._rpc.replies import PendingReply, ReplyQueue
from nameko._runtime.extensions import DependencyProvider, SharedExtension
from nameko._tracing import tracing_for

if TYPE_CHECKING:  # asyncio is imported only by a service with ``async def`` workers
    from nameko._aio.rpc import AsyncProxy

__all__ = ["RPC_TIMEOUT_CONFIG_KEY", "ClusterRpc", "ReplyListener", "RpcProxy", "ServiceRpc"]

# shimeji: default timeout (seconds) for calls made from inside a service.
RPC_TIMEOUT_CONFIG_KEY = "RPC_TIMEOUT"


class ReplyListener(SharedExtension):
    """The container's reply queue, shared by all its RPC dependencies."""

    connection = BrokerConnection()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._replies: ReplyQueue | None = None
        self._lock = Lock()
        self._callers: dict[str, RpcCaller] = {}

    def setup(self) -> None:
        # Consume before any worker can call: replies must have a home.
        self.replies  # noqa: B018

    @property
    def replies(self) -> ReplyQueue:
        """The reply queue, declared and consumed on first use (setups of the
        container's extensions run concurrently, so RpcProxy may come first)."""
        with self._lock:
            if self._replies is None:
                container = self.container
                self.connection.register_provider(self)
                replies = ReplyQueue(
                    self.connection.broker,
                    rpc_exchange_name(container.config),
                    container.service_name,
                    container.accept,
                )
                replies.start()
                self._replies = replies
            return self._replies

    @property
    def routing_key(self) -> str:
        return self.replies.routing_key

    def caller_for(self, options: Mapping[str, Any]) -> RpcCaller:
        """A caller publishing with ``options``, replies coming here. Cached:
        2.14 extensions build a proxy per worker, and a caller remembers which
        services it may pipeline requests to."""
        key = repr(sorted(options.items()))
        caller = self._callers.get(key)
        if caller is None:
            caller = self._new_caller(options)
            with self._lock:
                caller = self._callers.setdefault(key, caller)
        return caller

    def _new_caller(self, options: Mapping[str, Any]) -> RpcCaller:
        container = self.container
        options = dict(options)
        options.setdefault("timeout", container.config.get(RPC_TIMEOUT_CONFIG_KEY))
        return RpcCaller(
            self.connection.broker,
            self.replies,
            container.serializer,
            reply_listener=self,
            tracing=tracing_for(container.config),
            **options,
        )

    def get_reply_event(self, correlation_id: str) -> PendingReply:
        return self.replies.router.register(correlation_id)

    def register_for_reply(self, correlation_id: str) -> Any:
        """nameko 3: start waiting; returns the callable that gets the reply body."""
        return self.replies.router.register(correlation_id).response

    def stop(self) -> None:
        if self._replies is not None:
            self._replies.stop(RuntimeError("the container is stopping"))
        self.connection.unregister_provider(self)

    def kill(self) -> None:
        if self._replies is not None:
            self._replies.kill(RuntimeError("the container was killed"))
        self.connection.unregister_provider(self)


class RpcProxy(DependencyProvider):
    """Injects a 2.x proxy to ``target_service``: ``self.other.method(...)``.

    ``options`` as nameko's (``use_confirms``, ``serializer``, ...), plus
    ``timeout``: seconds to wait for each reply before `RpcTimeout` (default:
    the ``RPC_TIMEOUT`` config key, else wait forever as nameko does).
    """

    rpc_reply_listener = ReplyListener()

    def __init__(self, target_service: str, **options: Any) -> None:
        self.target_service = target_service
        self.options = options
        self._caller: RpcCaller | None = None

    def setup(self) -> None:
        self._caller = self.rpc_reply_listener.caller_for(self.options)

    def get_dependency(self, worker_ctx: Any) -> ServiceProxy | AsyncProxy:
        if _is_async(worker_ctx):
            return _async_proxy(self._caller, worker_ctx, self.target_service)
        return ServiceProxy(worker_ctx, self.target_service, self._caller, **self.options)


class ClusterRpc(DependencyProvider):
    """Injects a nameko 3 `Client` for every service: ``self.rpc.svc.method()``.

    ``publisher_options``: the protocol's own (``exchange``, ``routing_key``,
    ``mandatory``, ``reply_to``, ``correlation_id``) are dropped; ``uri``,
    ``ssl``, ``login_method`` give this dependency a broker connection (and
    reply queue) of its own; ``serializer``, ``use_confirms``,
    ``delivery_mode``, ``priority``, ``expiration`` and ``timeout`` (see
    `RpcProxy`) apply to its requests.
    """

    reply_listener: ReplyListener | None = ReplyListener()

    def __init__(self, **publisher_options: Any) -> None:
        self.connection_options, self.publisher_options = split_publisher_options(publisher_options)
        if self.connection_options:
            # Shadows the class-level sub-extension, so the container's reply
            # queue is not declared for us: our replies come back elsewhere.
            self.reply_listener = None
        self._caller: RpcCaller | None = None
        self._link: CallerLink | None = None

    def setup(self) -> None:
        if self.reply_listener is not None:
            self._caller = self.reply_listener.caller_for(self.publisher_options)
            return
        container = self.container
        options = dict(self.publisher_options)
        options.setdefault("timeout", container.config.get(RPC_TIMEOUT_CONFIG_KEY))
        self._link = CallerLink(
            connection_config(container.config, self.connection_options),
            container.service_name,
            container.serializer,
            container.accept,
            **options,
        )
        self._caller = self._link.caller

    @property
    def _ready_caller(self) -> RpcCaller:
        """What our clients publish with; made by `setup`."""
        if self._caller is None:
            raise RuntimeError(f"{self!r} is not set up")
        return self._caller

    def get_dependency(self, worker_ctx: Any) -> Client | AsyncProxy:
        caller = self._ready_caller
        if _is_async(worker_ctx):
            return _async_proxy(caller, worker_ctx)
        return Client(caller.publish, caller.register_for_reply, worker_ctx.context_data)

    def stop(self) -> None:
        if self._link is not None:
            self._link.stop(RuntimeError("the container is stopping"))

    def kill(self) -> None:
        if self._link is not None:
            self._link.kill(RuntimeError("the container was killed"))


class ServiceRpc(ClusterRpc):
    """Injects a nameko 3 `Client` bound to ``target_service``:
    ``self.other.method()``. Options as `ClusterRpc`'s."""

    def __init__(self, target_service: str, **publisher_options: Any) -> None:
        super().__init__(**publisher_options)
        self.target_service = target_service

    def get_dependency(self, worker_ctx: Any) -> Client | AsyncProxy:
        caller = self._ready_caller
        if _is_async(worker_ctx):
            return _async_proxy(caller, worker_ctx, self.target_service)
        return Client(
            caller.publish,
            caller.register_for_reply,
            worker_ctx.context_data,
            self.target_service,
        )


def _is_async(worker_ctx: Any) -> bool:
    """An ``async def`` worker gets the awaitable proxy (`nameko._aio.rpc`);
    ``is True``: a stand-in worker context (``Mock(context_data={...})`` in
    extensions' tests) has a truthy Mock there and wants the plain client."""
    return getattr(worker_ctx, "is_async", False) is True


def _async_proxy(caller: Any, worker_ctx: Any, service_name: str | None = None) -> AsyncProxy:
    from nameko._aio.rpc import AsyncProxy

    return AsyncProxy(caller, lambda: worker_ctx.context_data, service_name)
