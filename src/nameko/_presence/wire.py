"""The presence messages (pure): names, routing keys, bodies.

Everything travels on a topic exchange of our own, ``nameko-presence``, that
nameko 2.14 never declares or binds, so its peers never see a byte of it:

* ``instance.<service>``: an announcement (AMQP ``type`` ``announce``) or a
  goodbye (``bye``) of one service instance, to every listener;
* ``discover``: "who is there?" from a listener (``reply_to`` its queue);
  every instance answers at once with an announcement sent straight to that
  queue through the default exchange.

Bodies are JSON objects (`announcement` below). A listener ignores what it
cannot read, so later versions may add keys freely.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANNOUNCE",
    "BYE",
    "DISCOVER",
    "DISCOVER_ROUTING_KEY",
    "EXCHANGE",
    "LATENCY_BOUNDS_MS",
    "INSTANCE_ROUTING_PATTERN",
    "decode",
    "encode",
    "instance_routing_key",
]

EXCHANGE = "nameko-presence"
ANNOUNCE = "announce"
BYE = "bye"
DISCOVER = "discover"
DISCOVER_ROUTING_KEY = "discover"
INSTANCE_ROUTING_PATTERN = "instance.#"
CONTENT_TYPE = "application/json"

#: upper bounds (ms) of the latency histogram's buckets; one more counts the rest
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip


def instance_routing_key(service: str) -> str:
    return f"instance.{service}"


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode()


def decode(body: bytes) -> dict[str, Any] | None:
    """The message, or None for anything that is not a presence message."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(message, dict):
        return None
    if not isinstance(message.get("service"), str) or not isinstance(message.get("instance"), str):
        return None
    return message
