"""`RpcProxy`: call other services from inside a service."""

from __future__ import annotations

from typing import Any

from nameko._concurrency import Lock
from nameko._messaging.connection import BrokerConnection
from nameko._protocol.names import rpc_exchange_name
from nameko._rpc.caller import RpcCaller
from nameko._rpc.client import ServiceProxy
from nameko._rpc.replies import PendingReply, ReplyQueue
from nameko._runtime.extensions import DependencyProvider, SharedExtension

__all__ = ["RPC_TIMEOUT_CONFIG_KEY", "ReplyListener", "RpcProxy"]

# shimeji: default timeout (seconds) for calls made through RpcProxy.
RPC_TIMEOUT_CONFIG_KEY = "RPC_TIMEOUT"


class ReplyListener(SharedExtension):
    """The container's reply queue, shared by all its `RpcProxy` dependencies."""

    connection = BrokerConnection()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._replies: ReplyQueue | None = None
        self._lock = Lock()

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

    def get_reply_event(self, correlation_id: str) -> PendingReply:
        return self.replies.router.register(correlation_id)

    def stop(self) -> None:
        if self._replies is not None:
            self._replies.stop(RuntimeError("the container is stopping"))
        self.connection.unregister_provider(self)

    def kill(self) -> None:
        if self._replies is not None:
            self._replies.kill(RuntimeError("the container was killed"))
        self.connection.unregister_provider(self)


class RpcProxy(DependencyProvider):
    """Injects a proxy to ``target_service``: ``self.other.method(...)``.

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
        container = self.container
        options = dict(self.options)
        options.setdefault("timeout", container.config.get(RPC_TIMEOUT_CONFIG_KEY))
        listener = self.rpc_reply_listener
        self._caller = RpcCaller(
            listener.connection.broker, listener.replies, container.serializer, **options
        )

    def get_dependency(self, worker_ctx: Any) -> ServiceProxy:
        return ServiceProxy(worker_ctx, self.target_service, self._caller, **self.options)
