"""The web server's protective limits, read from config (all on by default).

Each one answers one way a client can hurt a server: a huge body (413), huge
or countless headers (431), a huge URL (414), a client that trickles its
request or sits on an idle connection (dropped after a timeout), too many
connections, or too many from one address (503), more concurrent requests
than the service can queue (503 with ``Retry-After``), or a WebSocket that
subscribes without end (a typed error). docs/architecture.md (D19, D34)
gives the reasons for each default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nameko.exceptions import ConfigurationError

__all__ = ["WebLimits"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class WebLimits:
    max_body_size: int = 16 * MiB  # WEB_MAX_BODY_SIZE -> 413
    max_header_size: int = 64 * 1024  # WEB_MAX_HEADER_SIZE, all header lines together -> 431
    max_header_count: int = 100  # WEB_MAX_HEADER_COUNT -> 431
    max_url_length: int = 8 * 1024  # WEB_MAX_URL_LENGTH -> 414
    header_timeout: float = 10.0  # WEB_HEADER_TIMEOUT: request line + headers must arrive in time
    body_timeout: float = 60.0  # WEB_BODY_TIMEOUT: body received, or response sent, in time
    keepalive_timeout: float = 15.0  # WEB_KEEPALIVE_TIMEOUT: idle keep-alive connections closed
    max_connections: int = 1024  # WEB_MAX_CONNECTIONS -> 503 and close
    # WEB_MAX_CONNECTIONS_PER_PEER: connections one client address may hold
    # (None: half of max_connections; 0: no per-peer share) -> 503 and close
    max_connections_per_peer: int | None = None
    queue_limit: int = 256  # WEB_QUEUE_LIMIT: requests waiting for a worker -> 503 Retry-After
    # WEB_THREAD_IDLE_TIMEOUT: a request thread (one per open WebSocket) idle
    # this long exits; 0 keeps them
    thread_idle_timeout: float = 30.0
    max_pipelined: int = 16  # WEB_MAX_PIPELINED: parsed requests held per connection
    websocket_max_message: int = 1 * MiB  # WEB_WEBSOCKET_MAX_MESSAGE -> close 1009
    websocket_ping_interval: float = 20.0  # WEB_WEBSOCKET_PING_INTERVAL; 0 turns pings off
    websocket_max_subscriptions: int = 100  # WEB_WEBSOCKET_MAX_SUBSCRIPTIONS, per socket
    websocket_max_channel_length: int = 256  # WEB_WEBSOCKET_MAX_CHANNEL_LENGTH, characters
    # WEB_REUSE_PORT: 1 lets processes share the address (SO_REUSEPORT: the
    # kernel splits connections); `nameko run --processes N` sets it
    reuse_port: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebLimits:
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = "WEB_" + field.name.upper()
            if config.get(key) is None:
                continue
            try:
                convert = float if isinstance(field.default, float) else int
                values[field.name] = convert(config[key])
            except (TypeError, ValueError):
                raise ConfigurationError(f"{key} must be a number, got {config[key]!r}")
            if values[field.name] < 0:
                raise ConfigurationError(f"{key} must not be negative, got {config[key]!r}")
        return cls(**values)

    @property
    def peer_share(self) -> int:
        """Connections one peer may hold; 0 when there is no per-peer share."""
        if self.max_connections_per_peer is None:
            return max(1, self.max_connections // 2)
        return self.max_connections_per_peer
