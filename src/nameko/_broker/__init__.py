"""Broker implementations behind one seam (`base.Broker`); `connect` picks one by URI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nameko._broker.base import Broker
from nameko._urls import join_urls

__all__ = ["connect"]

MEMORY_SCHEMES = ("memory",)
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def connect(uri: str | Sequence[str], **options: Any) -> Broker:
    """Open a broker connection for ``uri``.

    ``memory://[name]`` selects the in-process broker (connections with the
    same URI share one broker); ``amqp://``, ``pyamqp://`` and ``amqps://``
    select RabbitMQ. ``options``: ``heartbeat``, ``ssl``, ``login_method``,
    ``transport_options``, ``connection_name``, ``max_message_size``,
    ``reconnect_forever`` (ignored where meaningless). Several RabbitMQ
    URIs (a list, or ``;``-separated) are the nodes of a cluster, tried in
    turn (`nameko._urls`).
    """
    uri = join_urls(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in MEMORY_SCHEMES:
        from nameko._broker.memory import MemoryBroker

        return MemoryBroker(uri, **options)
    if scheme in AMQP_SCHEMES:
        from nameko._broker.rabbit import RabbitBroker

        return RabbitBroker(uri, **options)
    raise ValueError(
        f"unsupported broker URI scheme {scheme!r} (use amqp://, amqps://, pyamqp:// or memory://)"
    )
