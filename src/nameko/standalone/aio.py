"""Standalone clients for asyncio code (shimeji): ``await rpc.svc.method(x)``.

``ClusterRpcProxy``/``ServiceRpcProxy`` (nameko 2.x names and arguments) and
``ClusterRpcClient``/``ServiceRpcClient`` (nameko 3's), used with ``async
with`` or started once and shared; ``event_dispatcher`` gives ``await
dispatch(service_name, event_type, event_data)``.
"""

from nameko._aio.standalone import (
    AsyncEventDispatcher,
    ClusterRpcClient,
    ClusterRpcProxy,
    ServiceRpcClient,
    ServiceRpcProxy,
    event_dispatcher,
)

__all__ = [
    "AsyncEventDispatcher",
    "ClusterRpcClient",
    "ClusterRpcProxy",
    "ServiceRpcClient",
    "ServiceRpcProxy",
    "event_dispatcher",
]
