"""The WebSocket RPC hub (public nameko 2.x path); see `nameko._web.websocket`."""

from nameko._reexports import reexported
from nameko._web.websocket import (
    Connection,
    SocketInfo,
    WebSocketHub,
    WebSocketHubProvider,
    WebSocketRpc,
    WebSocketServer,
    rpc,
)

__all__ = [
    "Connection",
    "SocketInfo",
    "WebSocketHub",
    "WebSocketHubProvider",
    "WebSocketRpc",
    "WebSocketServer",
    "rpc",
]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
