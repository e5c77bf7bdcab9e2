"""Standalone RPC clients (public nameko 2.x path, with nameko 3's clients)."""

from nameko._reexports import reexported
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


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
