"""The event exchange of a service, and whether we declare it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko._broker.base import Exchange
from nameko._global_config import given_or_global
from nameko._protocol.names import event_exchange_name

__all__ = [
    "AUTO_DELETE_EVENT_EXCHANGES_CONFIG_KEY",
    "DECLARE_EVENT_EXCHANGES_CONFIG_KEY",
    "declares_event_exchanges",
    "get_event_exchange",
]

AUTO_DELETE_EVENT_EXCHANGES_CONFIG_KEY = "AUTO_DELETE_EVENT_EXCHANGES"
DECLARE_EVENT_EXCHANGES_CONFIG_KEY = "DECLARE_EVENT_EXCHANGES"


def get_event_exchange(service_name: str, config: Mapping[str, Any] | None = None) -> Exchange:
    """``<service_name>.events``: topic, durable, auto-delete per config.

    A shimeji `Exchange`, where nameko returns a kombu one; it has no
    ``no_declare`` flag: `declares_event_exchanges` tells dispatchers and
    handlers whether to declare it.
    """
    config = given_or_global(config)  # nameko 3: no argument
    auto_delete = bool(config.get(AUTO_DELETE_EVENT_EXCHANGES_CONFIG_KEY))
    return Exchange(
        event_exchange_name(service_name), type="topic", durable=True, auto_delete=auto_delete
    )


def declares_event_exchanges(config: Mapping[str, Any]) -> bool:
    """Only a literal ``DECLARE_EVENT_EXCHANGES: false`` turns declaring off."""
    return config.get(DECLARE_EVENT_EXCHANGES_CONFIG_KEY) is not False
