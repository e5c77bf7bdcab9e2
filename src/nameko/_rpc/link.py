"""A broker connection of its own with a reply queue and a caller on it.

Standalone clients have one each; so does a `ClusterRpc`/`ServiceRpc` given
``uri=`` (or ``ssl=``/``login_method=``), whose requests must go to another
broker than the container's and whose replies must come back over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko._messaging.connection import open_broker
from nameko._protocol.names import rpc_exchange_name
from nameko._rpc.caller import RpcCaller
from nameko._rpc.replies import ReplyQueue
from nameko._tracing import tracing_for

__all__ = ["CallerLink"]


class CallerLink:
    """Connects at construction; `stop`/`kill` fail the calls still waiting."""

    def __init__(
        self,
        config: Mapping[str, Any],
        owner: str,
        serializer: str,
        accept: Any,
        **caller_options: Any,
    ) -> None:
        self.broker = open_broker(config, f"nameko:{owner}")
        try:
            self.replies = ReplyQueue(self.broker, rpc_exchange_name(config), owner, accept)
            self.replies.start()
        except BaseException:
            self.broker.close()
            raise
        self.caller = RpcCaller(
            self.broker, self.replies, serializer, tracing=tracing_for(config), **caller_options
        )

    def stop(self, error: BaseException) -> None:
        self.replies.stop(error)
        self.broker.close()

    def kill(self, error: BaseException) -> None:
        self.replies.kill(error)
        self.broker.close()
