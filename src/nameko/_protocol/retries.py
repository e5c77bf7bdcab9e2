"""Retries, dead letters and delivery counts on the wire (shimeji).

Pure names and header values; `nameko._reliability.redelivery` does the I/O.

Retry later: a failed message is published again, with its attempt number
raised, to the ``nameko-retry`` headers exchange; the header ``nameko-delay``
picks one delay queue. A delay queue holds messages for a fixed time
(``x-message-ttl``) and then dead-letters them to their target: the default
exchange with the consumer's queue name as routing key (events, ``@consume``),
or the RPC exchange with the request's own routing key (so any instance,
nameko 2.14 ones included, can take the retry). One delay per queue keeps
each queue FIFO in expiry order; delays are rounded to a grid of about 19%
steps so that jittered back-offs share a few queues instead of one each.
(RabbitMQ ignores ``x-`` headers when matching a headers exchange, hence a
delay header without the prefix.)

Dead letters: ``dlq-<service>.<method>``, a durable queue per entrypoint,
holding the original message with ``x-nameko-*`` headers saying where it came
from and why it was given up.

Delivery counts (poison messages): a classic queue only says "redelivered",
so a redelivered message is published again with ``x-nameko-deliveries``
raised before it runs; quorum queues count in ``x-delivery-count``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ATTEMPT_HEADER",
    "CONTROL_HEADERS",
    "DEAD_LETTER_PREFIX",
    "DELAY_HEADER",
    "DELIVERIES_HEADER",
    "RETRY_EXCHANGE",
    "attempt_of",
    "dead_letter_queue_name",
    "delay_queue_name",
    "deliveries_of",
    "is_control_header",
    "round_delay",
]

RETRY_EXCHANGE = "nameko-retry"
DELAY_HEADER = "nameko-delay"
ATTEMPT_HEADER = "x-nameko-attempt"
DELIVERIES_HEADER = "x-nameko-deliveries"
QUORUM_DELIVERY_COUNT = "x-delivery-count"
DEAD_LETTER_PREFIX = "dlq-"

# what a dead letter says about itself
REASON_HEADER = "x-nameko-dead-reason"  # "retries-exhausted" | "delivery-limit" | "failed"
ERROR_TYPE_HEADER = "x-nameko-error-type"
ERROR_PATH_HEADER = "x-nameko-error-path"
ERROR_HEADER = "x-nameko-error"
ENTRYPOINT_HEADER = "x-nameko-entrypoint"
ORIGIN_EXCHANGE_HEADER = "x-nameko-original-exchange"
ORIGIN_ROUTING_KEY_HEADER = "x-nameko-original-routing-key"
FAILED_AT_HEADER = "x-nameko-failed-at"  # Unix time, ms
LAST_ERROR_HEADER = "x-nameko-last-error"  # on a retry: why the previous attempt failed

#: shimeji's own headers, never context data (RabbitMQ's ``x-death`` and
#: ``x-delivery-count`` stay context data, as in nameko: nameko-amqp-retry
#: users read them there)
CONTROL_HEADERS = frozenset({DELAY_HEADER})
_CONTROL_PREFIXES = ("x-nameko-",)

MIN_DELAY_MS = 10
_STEPS_PER_DOUBLING = 4  # grid of 2 ** (1/4): about 19% apart
MAX_ERROR_TEXT = 1000


def is_control_header(name: str) -> bool:
    """Whether a header is shimeji's bookkeeping (never context data, never
    forwarded on onward calls); nameko 2.14 peers forward what they get with
    the ``nameko.`` prefix, so that form counts too."""
    bare = name[7:] if name.startswith("nameko.") else name
    return bare in CONTROL_HEADERS or bare.startswith(_CONTROL_PREFIXES)


def round_delay(seconds: float) -> int:
    """A back-off in milliseconds, on the delay queues' grid (at least 10 ms)."""
    ms = max(float(MIN_DELAY_MS), seconds * 1000.0)
    step = round(math.log2(ms) * _STEPS_PER_DOUBLING)
    return max(MIN_DELAY_MS, round(2 ** (step / _STEPS_PER_DOUBLING)))


def delay_queue_name(delay_ms: int, target_exchange: str) -> str:
    """``nameko-retry.<ms>ms`` (back into a queue by name) or
    ``nameko-retry.<ms>ms.<exchange>`` (back through that exchange)."""
    base = f"{RETRY_EXCHANGE}.{delay_ms}ms"
    return f"{base}.{target_exchange}" if target_exchange else base


def dead_letter_queue_name(service: str, method: str) -> str:
    return f"{DEAD_LETTER_PREFIX}{service}.{method}"


def _count(headers: Mapping[str, Any] | None, name: str, default: int) -> int:
    value = (headers or {}).get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return default  # absent, or a peer's garbage: count from the start
    return value


def attempt_of(headers: Mapping[str, Any] | None) -> int:
    """Which attempt this delivery is (1 for a first delivery)."""
    return _count(headers, ATTEMPT_HEADER, 1)


def deliveries_of(headers: Mapping[str, Any] | None, redelivered: bool) -> int:
    """How many times this message has been delivered, this time included:
    RabbitMQ's own count on a quorum queue, else ours (raised by one for a
    redelivery we have not republished yet)."""
    quorum = (headers or {}).get(QUORUM_DELIVERY_COUNT)
    if isinstance(quorum, int) and not isinstance(quorum, bool) and quorum >= 0:
        return quorum + 1
    return _count(headers, DELIVERIES_HEADER, 1) + (1 if redelivered else 0)


def error_text(exc: BaseException) -> str:
    """``Type: message``, cut to a size a header can carry."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:
        text = type(exc).__name__
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."
