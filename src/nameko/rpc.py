"""RPC entrypoint and proxies (public nameko 2.x path, with nameko 3 aliases)."""

from typing import Any

from nameko._broker.base import Exchange
from nameko._global_config import given_or_global
from nameko._protocol.names import (
    RPC_QUEUE_TEMPLATE,
    RPC_REPLY_QUEUE_TEMPLATE,
    RPC_REPLY_QUEUE_TTL,
    rpc_exchange_name,
)
from nameko._rpc.client import MethodProxy, RpcReply, ServiceProxy
from nameko._rpc.dependency import ReplyListener, RpcProxy
from nameko._rpc.server import Rpc, RpcConsumer, rpc

__all__ = [
    "RPC_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TTL",
    "MethodProxy",
    "ReplyListener",
    "Rpc",
    "RpcConsumer",
    "RpcProxy",
    "RpcReply",
    "ServiceProxy",
    "ServiceRpc",
    "get_rpc_exchange",
    "rpc",
]

ServiceRpc = RpcProxy  # nameko 3 name


def get_rpc_exchange(config: Any = None) -> Exchange:
    """The RPC exchange of a config (nameko 3: of the global config)."""
    return Exchange(rpc_exchange_name(given_or_global(config)), type="topic", durable=True)
