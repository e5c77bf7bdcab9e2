"""The proxy objects user code calls: ``proxy.service.method(...)``."""

from __future__ import annotations

from typing import Any

from nameko._protocol.envelopes import decode_reply
from nameko._rpc.caller import RpcCaller
from nameko._rpc.replies import PendingReply

__all__ = ["ClusterProxy", "MethodProxy", "RpcReply", "ServiceProxy"]

_NOT_YET = object()


class RpcReply:
    """A call in flight. `result` waits for the reply (once) and returns the
    value or raises the remote error; later calls give the same outcome."""

    def __init__(self, reply_event: PendingReply) -> None:
        self.reply_event = reply_event
        self._body: Any = _NOT_YET

    def result(self) -> Any:
        if self._body is _NOT_YET:
            self._body = self.reply_event.body()
        return decode_reply(self._body)


class MethodProxy:
    """``proxy.service.method``: call it, or `call_async` it."""

    def __init__(
        self,
        worker_ctx: Any,
        service_name: str,
        method_name: str,
        caller: RpcCaller,
        **options: Any,
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.method_name = method_name
        self.caller = caller
        self.options = options

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args: Any, **kwargs: Any) -> RpcReply:
        pending = self.caller.call_async(
            self.service_name,
            self.method_name,
            args,
            kwargs,
            self.worker_ctx.context_data,  # computed per call, as nameko 2.14 does
        )
        return RpcReply(pending)

    @property
    def container(self) -> Any:
        return self.worker_ctx.container

    @property
    def serializer(self) -> str:
        return self.caller.serializer

    def __repr__(self) -> str:
        return f"<proxy method: {self.service_name}.{self.method_name}>"


class ServiceProxy:
    """``proxy.service``: attribute access gives a new `MethodProxy` each time."""

    def __init__(
        self, worker_ctx: Any, service_name: str, caller: RpcCaller, **options: Any
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.caller = caller
        self.options = options

    def __getattr__(self, name: str) -> MethodProxy:
        if name.startswith("__") and name.endswith("__"):
            # keeps copy, pickle and friends from making RPC calls
            raise AttributeError(name)
        return MethodProxy(self.worker_ctx, self.service_name, name, self.caller, **self.options)

    def __getitem__(self, name: str) -> MethodProxy:
        return getattr(self, name)

    def __repr__(self) -> str:
        return f"<proxy service: {self.service_name}>"


class ClusterProxy:
    """``cluster.service.method(...)`` for any service; ``cluster['a-b']`` for
    names that are not identifiers. Service proxies are cached."""

    def __init__(self, worker_ctx: Any, caller: RpcCaller) -> None:
        self._worker_ctx = worker_ctx
        self._caller = caller
        self._proxies: dict[str, ServiceProxy] = {}

    def __getattr__(self, name: str) -> ServiceProxy:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        proxy = self._proxies.get(name)
        if proxy is None:
            proxy = self._proxies.setdefault(
                name, ServiceProxy(self._worker_ctx, name, self._caller)
            )
        return proxy

    def __getitem__(self, name: str) -> ServiceProxy:
        return getattr(self, name)
