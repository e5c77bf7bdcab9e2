"""Context data <-> AMQP headers (SPEC 1.7, 3.4).

Outgoing context data items become ``<prefix>.<key>`` headers; incoming
headers become context data with a leading ``<prefix>.`` removed. Headers
without the prefix are kept under their own name, as nameko does, so they
are forwarded (prefixed) on onward calls.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from nameko._protocol.retries import is_control_header
from nameko._protocol.tracecontext import received_trace
from nameko.constants import HEADER_PREFIX

__all__ = ["decode_context_headers", "encode_context_headers"]

_ABSENT = object()


def encode_context_headers(
    context_data: Mapping[str, Any], prefix: str = HEADER_PREFIX
) -> dict[str, Any]:
    """``{"<prefix>.<key>": value}`` for every item whose value is not None.

    AMQP header tables cannot carry None in every client nameko talks to, so
    such items are dropped, with a `UserWarning` naming them.
    """
    headers: dict[str, Any] = {}
    dropped = []
    received = received_trace(context_data)
    for key, value in context_data.items():
        if received is not None and received.get(key, _ABSENT) == value:
            continue  # a trace header of the hop that brought this worker's call
        if value is None:
            dropped.append(key)
        else:
            headers[f"{prefix}.{key}"] = value
    if dropped:
        warnings.warn(
            "Attempted to publish unserialisable header value; header(s) with a "
            f"None value dropped: {', '.join(map(str, dropped))}",
            UserWarning,
            stacklevel=2,
        )
    return headers


def decode_context_headers(
    headers: Mapping[str, Any] | None, prefix: str = HEADER_PREFIX
) -> dict[str, Any]:
    """Context data from message headers: ``<prefix>.`` stripped where present.
    shimeji's own bookkeeping (retry and delivery counts, ``x-nameko-*``) is
    left out: it describes this message, not the call, and must not ride
    along on onward calls."""
    if not headers:
        return {}
    marker = f"{prefix}."
    cut = len(marker)
    return {
        (key[cut:] if key.startswith(marker) else key): value
        for key, value in headers.items()
        if not is_control_header(key)
    }
