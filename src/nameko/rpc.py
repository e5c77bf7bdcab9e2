"""RPC entrypoint and clients (public nameko 2.x path, with nameko 3's API)."""

from typing import Any

from nameko._broker.base import Exchange
from nameko._global_config import given_or_global
from nameko._protocol.names import (
    RPC_QUEUE_TEMPLATE,
    RPC_REPLY_QUEUE_TEMPLATE,
    RPC_REPLY_QUEUE_TTL,
    rpc_exchange_name,
)
from nameko._reexports import reexported
from nameko._rpc.client import Client, MethodProxy, Proxy, RpcCall, RpcReply, ServiceProxy
from nameko._rpc.dependency import ClusterRpc, ReplyListener, RpcProxy, ServiceRpc
from nameko._rpc.options import RESTRICTED_PUBLISHER_OPTIONS
from nameko._rpc.responder import Responder
from nameko._rpc.server import Rpc, RpcConsumer, rpc

__all__ = [
    "RESTRICTED_PUBLISHER_OPTIONS",
    "RPC_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TTL",
    "Client",
    "ClusterRpc",
    "MethodProxy",
    "Proxy",
    "ReplyListener",
    "Responder",
    "Rpc",
    "RpcCall",
    "RpcConsumer",
    "RpcProxy",
    "RpcReply",
    "ServiceProxy",
    "ServiceRpc",
    "get_rpc_exchange",
    "rpc",
]


def get_rpc_exchange(config: Any = None) -> Exchange:
    """The RPC exchange of a config (nameko 3: of the global config)."""
    return Exchange(rpc_exchange_name(given_or_global(config)), type="topic", durable=True)


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
