"""Call deadlines: when a caller stops waiting, and what a request carries.

A call made with a timeout has an absolute deadline, ``now + timeout``. It
travels two ways:

* the ``nameko.call_deadline`` header (context data key ``call_deadline``):
  Unix time in integer milliseconds. Context data, so a nameko 2.14 service
  forwards it unchanged on its own onward calls and the budget survives a
  nameko hop; a nameko peer otherwise ignores it.
* the AMQP ``expiration`` property (milliseconds left when published): the
  broker drops a request that waited in its queue past the deadline, and
  needs no clock shared with the caller to do so.

A service compares the header with its own clock when a worker would start,
so the header assumes clocks synchronised (NTP) to well within a timeout.
A nested call takes the earlier of its own timeout and the deadline it
inherited. Pure functions: the clock is passed in.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "DEADLINE_CONTEXT_KEY",
    "DEADLINE_HEADER",
    "call_deadline",
    "decode_deadline",
    "encode_deadline",
    "expiration_for",
]

DEADLINE_CONTEXT_KEY = "call_deadline"
DEADLINE_HEADER = f"nameko.{DEADLINE_CONTEXT_KEY}"


def encode_deadline(deadline: float) -> int:
    """The header value for a deadline in Unix seconds: integer milliseconds."""
    return math.floor(deadline * 1000)


def decode_deadline(value: Any) -> float | None:
    """A header's deadline in Unix seconds; None for a missing or malformed
    value (a peer's garbage must not fail the request: it just has no
    deadline)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return value / 1000.0


def call_deadline(header: Any, timeout: float | None, now: float) -> float | None:
    """The deadline of a call made now: the earlier of ``now + timeout`` and
    the deadline the calling worker inherited (its ``call_deadline`` header
    value, None if it has none)."""
    inherited = decode_deadline(header)
    own = now + timeout if timeout is not None else None
    if inherited is None:
        return own
    return inherited if own is None else min(own, inherited)


def expiration_for(deadline: float, now: float, expiration: str | None = None) -> str:
    """The AMQP ``expiration`` (milliseconds, a string) for a request sent
    now: the time left, at least 1 ms (0 would mean "deliver now or drop",
    which a consumer busy for a moment would turn into a drop), and never
    longer than an ``expiration`` the caller set itself."""
    left = max(1, math.ceil((deadline - now) * 1000))
    if expiration is not None and expiration.isdigit():
        left = min(left, int(expiration))
    return str(left)
