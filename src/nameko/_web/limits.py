"""The web server's protective limits, read from config (all on by default).

Each one answers one way a client can hurt a server: a huge body (413), huge
or countless headers (431), a huge URL (414), a client that trickles its
request or sits on an idle connection (dropped after a timeout), too many
connections (503), or more concurrent requests than the service can queue
(503 with ``Retry-After``). docs/architecture.md (D19) gives the reasons for
each default.
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
    queue_limit: int = 100  # WEB_QUEUE_LIMIT: requests waiting for a worker -> 503 Retry-After
    max_pipelined: int = 16  # WEB_MAX_PIPELINED: parsed requests held per connection
    websocket_max_message: int = 1 * MiB  # WEB_WEBSOCKET_MAX_MESSAGE -> close 1009
    websocket_ping_interval: float = 20.0  # WEB_WEBSOCKET_PING_INTERVAL; 0 turns pings off
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
