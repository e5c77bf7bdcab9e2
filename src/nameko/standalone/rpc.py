"""Standalone RPC clients (public nameko 2.x path, with nameko 3 names)."""

from nameko._rpc.client import ClusterProxy
from nameko._rpc.standalone import (
    ClusterRpcClient,
    ClusterRpcProxy,
    ServiceRpcClient,
    ServiceRpcProxy,
    StandaloneProxyBase,
)

__all__ = [
    "ClusterProxy",
    "ClusterRpcClient",
    "ClusterRpcProxy",
    "ServiceRpcClient",
    "ServiceRpcProxy",
    "StandaloneProxyBase",
]
