"""What an entrypoint's AMQP consumer was set up with, read-only.

nameko 3's entrypoints hold a ``consumer`` object whose attributes
(``amqp_uri``, ``prefetch_count``, ``queues``...) tracing instrumentation
reads to describe a worker's span. Ours consume through the container's
shared connection instead, so ``entrypoint.consumer`` is this summary,
built on access (never on the message path), with the password masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nameko._messaging.connection import amqp_uri, broker_options
from nameko._urls import sanitize_url

__all__ = ["ConsumerSettings"]


class ConsumerSettings:
    __slots__ = (
        "accept",
        "amqp_uri",
        "consumer_options",
        "heartbeat",
        "prefetch_count",
        "queues",
        "ssl",
    )

    def __init__(
        self,
        config: Mapping[str, Any],
        prefetch_count: int,
        accept: Iterable[str],
        queues: Iterable[str],
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        options = broker_options(config)
        self.amqp_uri = sanitize_url(amqp_uri(config))
        self.ssl = bool(options["ssl"])  # whether, not the options (key file paths...)
        self.heartbeat = options["heartbeat"]
        self.prefetch_count = prefetch_count
        self.accept = list(accept)
        self.queues = list(queues)
        self.consumer_options = dict(consumer_options or {})
