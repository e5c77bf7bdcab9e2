"""``nameko.standalone.aio``: the standalone clients, for asyncio code.

``async with ClusterRpcProxy(config) as rpc: await rpc.svc.method(x)``; or
make one client at application start-up (a FastAPI/Starlette lifespan) and
share it for the life of the app: one connection and one reply queue, any
number of concurrent calls from any number of tasks, each reply routed by
correlation id. A client not started yet starts on its first awaited call.

Why a bridge to the thread-based transport and not an asyncio transport:
the AMQP connection already lives on its own I/O thread (heartbeats can't be
starved by the loop), publishing is a non-blocking socket write, and replies
cross to the loop with one ``call_soon_threadsafe`` each. Measured in
``benchmarks/bench_aio.py`` against the sync client's fan-out (see
docs/architecture.md, D23). Connecting and stopping block, so they run on
the loop's executor; no lock is ever held across an await.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko import serialization
from nameko._aio.bridge import in_executor
from nameko._aio.events import confirmed
from nameko._aio.rpc import AsyncProxy
from nameko._concurrency import Lock
from nameko._events.dispatcher import event_dispatcher as sync_event_dispatcher
from nameko._global_config import given_or_global
from nameko._ids import new_id
from nameko._protocol.calls import make_call_id
from nameko._rpc.caller import RpcCaller
from nameko._rpc.link import CallerLink
from nameko._rpc.options import connection_config, split_publisher_options
from nameko.constants import CALL_ID_STACK_CONTEXT_KEY

__all__ = [
    "AsyncEventDispatcher",
    "ClusterRpcClient",
    "ClusterRpcProxy",
    "ServiceRpcClient",
    "ServiceRpcProxy",
    "event_dispatcher",
]

STOPPED_MESSAGE = "This client has been stopped, and can no longer be used"


class _AsyncStandalone:
    """Connect on `start` (on the loop's executor), hand out an `AsyncProxy`,
    fail the calls still waiting on `stop`."""

    owner = "standalone_rpc_proxy"

    def __init__(
        self,
        config: Mapping[str, Any] | None,
        context_data: Mapping[str, Any] | None,
        timeout: float | None,
        options: Mapping[str, Any],
        service_name: str | None = None,
    ) -> None:
        self._given_config = config
        self.context_data = dict(context_data or {})
        self.timeout = timeout
        self.service_name = service_name
        self._connection_options, self._options = split_publisher_options(options)
        self._lock = Lock()  # taken only inside executor jobs, never across an await
        self._link: CallerLink | None = None
        self._stopped = False

    async def __aenter__(self) -> AsyncProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> AsyncProxy:
        """Connect (once) and return the proxy: ``proxy.svc.method``."""
        return self._proxy(await self._started_caller())

    def _connect(self) -> RpcCaller:
        with self._lock:
            if self._stopped:
                raise RuntimeError(STOPPED_MESSAGE)
            if self._link is None:
                config = connection_config(self._given_config, self._connection_options)
                serializer, accept = serialization.setup(config)
                options = {"timeout": self.timeout, **self._options}
                self._link = CallerLink(config, self.owner, serializer, accept, **options)
            return self._link.caller

    async def _started_caller(self) -> RpcCaller:
        return await in_executor(self._connect)

    def _proxy(self, caller: RpcCaller | None) -> AsyncProxy:
        proxy = AsyncProxy(caller, self._call_context, start=self._started_caller)
        return proxy if self.service_name is None else proxy[self.service_name]

    def _call_context(self) -> dict[str, Any]:
        data = dict(self.context_data)
        data[CALL_ID_STACK_CONTEXT_KEY] = [self._new_call_id()]
        return data

    def _new_call_id(self) -> str:
        return make_call_id(self.owner, "call", new_id())

    async def stop(self) -> None:
        """Disconnect; calls still waiting (and later ones) fail with `RuntimeError`."""
        await in_executor(self._disconnect)

    def _disconnect(self) -> None:
        with self._lock:
            link, self._link = self._link, None
            self._stopped = True
        if link is not None:
            link.stop(RuntimeError(STOPPED_MESSAGE))

    def __getattr__(self, name: str) -> AsyncProxy:
        # ``client.svc.method(...)`` without start(): starts on first await
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> AsyncProxy:
        caller = self._link.caller if self._link is not None else None
        return self._proxy(caller)[name]


class ClusterRpcProxy(_AsyncStandalone):
    """``async with ClusterRpcProxy(config) as rpc: await rpc.svc.method(x)``
    (the config may be left out: nameko 3's global config)."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        context_data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(config, context_data, timeout, options)


class ServiceRpcProxy(_AsyncStandalone):
    """``async with ServiceRpcProxy("svc", config) as svc: await svc.method(x)``."""

    def __init__(
        self,
        service_name: str,
        config: Mapping[str, Any] | None = None,
        context_data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(config, context_data, timeout, options, service_name)


class ClusterRpcClient(_AsyncStandalone):
    """nameko 3 style: the global config (``uri=`` and friends override it)."""

    owner = "standalone_rpc_client"

    def __init__(
        self,
        context_data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(None, context_data, timeout, options)
        self.client_id = new_id()

    def _new_call_id(self) -> str:
        return f"{self.owner}.{self.client_id}.{new_id()}"


class ServiceRpcClient(ClusterRpcClient):
    """``async with ServiceRpcClient("svc") as svc: await svc.method(x)``."""

    def __init__(self, service_name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.service_name = service_name


class AsyncEventDispatcher:
    """``await dispatch(service_name, event_type, event_data)``: returns once
    the broker confirmed the event; ``asyncio.gather`` keeps many in flight.
    The first dispatch (it connects and declares the exchange) runs on the
    loop's executor; later ones only await their confirm."""

    def __init__(self, config: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> None:
        self._sync = sync_event_dispatcher(given_or_global(config), pipeline=True, **kwargs)
        self._warm = False
        self._blocking = bool(kwargs.get("mandatory"))  # an unroutable event raises: in full

    async def __call__(self, service_name: str, event_type: str, event_data: Any) -> None:
        sync = self._sync
        if not self._warm or self._blocking:
            await in_executor(sync.dispatch_and_wait, service_name, event_type, event_data)
            self._warm = True
            return
        await confirmed(sync.dispatch_pipelined(service_name, event_type, event_data))


def event_dispatcher(
    nameko_config: Mapping[str, Any] | None = None, **kwargs: Any
) -> AsyncEventDispatcher:
    """The awaitable ``event_dispatcher``: options as the sync one's."""
    return AsyncEventDispatcher(nameko_config, kwargs)
