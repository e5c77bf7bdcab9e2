"""``@consume`` and the `Publisher` dependency (public nameko 2.x path).

See `nameko._messaging.consume` for how queues are declared (kombu-style
``Queue`` objects work when kombu is installed; our own
`nameko._broker.base.Queue`/`Exchange`, or a queue name, work without it)
and for what we do differently from nameko on errors, and
`nameko._messaging.publisher` for publishing.

`QueueConsumer` is nameko 2.x's shared consumer for extensions written
against it (`nameko._messaging.queue_consumer`).
`encode_to_headers` and `decode_from_headers` are nameko 3's helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nameko._messaging.consume import Consumer, HeaderDecoder, QueueConsumerStopped, consume
from nameko._messaging.publisher import HeaderEncoder, Publisher
from nameko._messaging.queue_consumer import QueueConsumer
from nameko._protocol.headers import decode_context_headers
from nameko._reexports import reexported
from nameko.constants import HEADER_PREFIX

__all__ = [
    "Consumer",
    "HeaderDecoder",
    "HeaderEncoder",
    "Publisher",
    "QueueConsumer",
    "QueueConsumerStopped",
    "consume",
    "decode_from_headers",
    "encode_to_headers",
]


def encode_to_headers(
    context_data: Mapping[str, Any], prefix: str = HEADER_PREFIX
) -> dict[str, Any]:
    """``{"<prefix>.<key>": value}`` for the items whose value is not None."""
    return {f"{prefix}.{key}": value for key, value in context_data.items() if value is not None}


def decode_from_headers(
    headers: Mapping[str, Any] | None, prefix: str = HEADER_PREFIX
) -> dict[str, Any]:
    """Context data from headers, ``<prefix>.`` stripped where present."""
    return decode_context_headers(headers, prefix)


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
