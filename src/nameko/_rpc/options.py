"""nameko 3's publisher options for RPC clients (SPEC 12.4, 12.5).

`ClusterRpc`, `ServiceRpc` and the standalone clients take ``**publisher_options``.
Some are decided by the RPC protocol itself and are dropped; ``uri``, ``ssl``
and ``login_method`` choose the broker connection; the rest go to the caller
(``serializer``, ``use_confirms``, ``delivery_mode``, ``priority``,
``expiration``, and shimeji's ``timeout``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko._messaging.connection import config_with_uri
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY

__all__ = [
    "CONNECTION_OPTIONS",
    "RESTRICTED_PUBLISHER_OPTIONS",
    "connection_config",
    "split_publisher_options",
]

# Set by the protocol for every request: a caller may not change them.
RESTRICTED_PUBLISHER_OPTIONS = (
    "exchange",
    "routing_key",
    "mandatory",
    "reply_to",
    "correlation_id",
)

# Options that mean "a broker connection other than the container's/config's".
CONNECTION_OPTIONS = ("uri", "ssl", "login_method")


def split_publisher_options(
    options: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(connection options, caller options)``, restricted ones dropped."""
    connection: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in options.items():
        if name in RESTRICTED_PUBLISHER_OPTIONS:
            continue
        (connection if name in CONNECTION_OPTIONS else rest)[name] = value
    return connection, rest


def connection_config(
    config: Mapping[str, Any] | None, connection: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of ``config`` (the global one when None) with the connection
    options written in as the config keys the broker connection reads."""
    merged = config_with_uri(config, connection.get("uri"))
    if connection.get("ssl") is not None:
        merged[AMQP_SSL_CONFIG_KEY] = connection["ssl"]
    if connection.get("login_method") is not None:
        merged[LOGIN_METHOD_CONFIG_KEY] = connection["login_method"]
    return merged
