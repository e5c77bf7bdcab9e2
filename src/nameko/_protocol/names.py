"""Exchange, queue and routing-key names that nameko 2.14 uses on the broker.

Both sides of a conversation compute these independently, so every format
here is part of the wire contract (SPEC 3.1, 4.1, 4.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nameko.constants import RPC_EXCHANGE_CONFIG_KEY

__all__ = [
    "BROADCAST",
    "DEFAULT_RPC_EXCHANGE",
    "RPC_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TEMPLATE",
    "RPC_REPLY_QUEUE_TTL",
    "SERVICE_POOL",
    "SINGLETON",
    "STANDALONE_RPC_CLIENT_NAME",
    "STANDALONE_RPC_PROXY_NAME",
    "EventQueueSpec",
    "event_exchange_name",
    "event_handler_queue",
    "event_queue_name",
    "method_from_routing_key",
    "parse_routing_key",
    "reply_queue_arguments",
    "reply_queue_name",
    "rpc_binding_key",
    "rpc_exchange_name",
    "rpc_queue_name",
    "rpc_routing_key",
    "service_from_routing_key",
]

DEFAULT_RPC_EXCHANGE = "nameko-rpc"
RPC_QUEUE_TEMPLATE = "rpc-{}"
RPC_REPLY_QUEUE_TEMPLATE = "rpc.reply-{}-{}"
#: ``x-expires`` of reply queues, in milliseconds: they outlive a dropped
#: connection by five minutes so a reconnecting caller still gets its replies.
RPC_REPLY_QUEUE_TTL = 300000

#: The pseudo service names standalone clients use in reply queue names and call ids.
STANDALONE_RPC_PROXY_NAME = "standalone_rpc_proxy"  # nameko 2.x
STANDALONE_RPC_CLIENT_NAME = "standalone_rpc_client"  # nameko 3.x

# Event handler types (the values of nameko.events' constants).
SERVICE_POOL = "service_pool"
SINGLETON = "singleton"
BROADCAST = "broadcast"


# -- RPC -------------------------------------------------------------------------


def rpc_exchange_name(config: Mapping[str, Any]) -> str:
    """The RPC exchange of a config (``rpc_exchange``, default ``nameko-rpc``)."""
    return config.get(RPC_EXCHANGE_CONFIG_KEY, DEFAULT_RPC_EXCHANGE)


def rpc_queue_name(service_name: str) -> str:
    """The request queue of a service: ``rpc-<service>``."""
    return RPC_QUEUE_TEMPLATE.format(service_name)


def rpc_routing_key(service_name: str, method_name: str) -> str:
    """Routing key of a request: ``<service>.<method>``."""
    return f"{service_name}.{method_name}"


def rpc_binding_key(service_name: str) -> str:
    """Binding of the request queue: ``<service>.*`` (so dotted method names are unroutable)."""
    return f"{service_name}.*"


def parse_routing_key(routing_key: str) -> str:
    """The method name of a request routing key: its last dot-separated segment."""
    return routing_key.rpartition(".")[2]


method_from_routing_key = parse_routing_key


def service_from_routing_key(routing_key: str) -> str:
    """Everything before the last dot of a request routing key."""
    return routing_key.rpartition(".")[0]


def reply_queue_name(service_name: str, identifier: str) -> str:
    """A reply queue: ``rpc.reply-<service>-<uuid>``; it is bound with the bare uuid."""
    return RPC_REPLY_QUEUE_TEMPLATE.format(service_name, identifier)


def reply_queue_arguments() -> dict[str, Any]:
    """Queue arguments of every reply queue (a fresh dict each time)."""
    return {"x-expires": RPC_REPLY_QUEUE_TTL}


# -- events ----------------------------------------------------------------------


def event_exchange_name(service_name: str) -> str:
    """The topic exchange a service dispatches its events to."""
    return f"{service_name}.events"


def event_queue_name(
    handler_type: str,
    source_service: str,
    event_type: str,
    service_name: str,
    method_name: str,
    broadcast_identifier: str | None = None,
) -> str:
    """The queue an event handler consumes from (SPEC 4.4).

    ``handler_type`` is compared by value here; nameko's identity comparison
    is the entrypoint's business, not the naming rule's.
    """
    base = f"evt-{source_service}-{event_type}"
    if handler_type == SINGLETON:
        return base
    pooled = f"{base}--{service_name}.{method_name}"
    if handler_type == BROADCAST:
        return f"{pooled}-{broadcast_identifier}"
    if handler_type == SERVICE_POOL:
        return pooled
    raise ValueError(f"unknown event handler type {handler_type!r}")


@dataclass(frozen=True)
class EventQueueSpec:
    """Name and flags of an event handler's queue; bound with ``routing_key``."""

    name: str
    exchange: str
    routing_key: str
    durable: bool
    auto_delete: bool
    exclusive: bool


def event_handler_queue(
    handler_type: str,
    source_service: str,
    event_type: str,
    service_name: str,
    method_name: str,
    *,
    reliable_delivery: bool = True,
    broadcast_identifier: str | None = None,
) -> EventQueueSpec:
    """The full queue declaration of an event handler (SPEC 4.4 table)."""
    name = event_queue_name(
        handler_type, source_service, event_type, service_name, method_name, broadcast_identifier
    )
    transient = not reliable_delivery
    return EventQueueSpec(
        name=name,
        exchange=event_exchange_name(source_service),
        routing_key=event_type,
        durable=True,
        auto_delete=transient,
        exclusive=transient and handler_type == BROADCAST,
    )
