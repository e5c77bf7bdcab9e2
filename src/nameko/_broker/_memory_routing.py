"""Pure rules of the in-memory broker: exchange routing and header tables.

Everything here is a function of its arguments (no state, no locks), so the
AMQP matching rules can be read and tested on their own. The behaviour follows
RabbitMQ 3.10, checked against a real broker (see ``tests/contract``).
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterable, Mapping
from typing import Any

from nameko._broker.base import MAX_HEADER_NESTING, Binding

__all__ = [
    "EXCHANGE_TYPES",
    "X_MATCH_MODES",
    "check_x_match",
    "copy_headers",
    "headers_match",
    "route",
    "topic_matches",
]

EXCHANGE_TYPES = frozenset({"direct", "topic", "fanout", "headers"})
X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")

# AMQP field tables carry signed 64-bit integers at most.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# Field-table keys are short strings: at most 255 bytes of UTF-8.
_MAX_KEY_BYTES = 255


# -- routing ---------------------------------------------------------------


def route(
    exchange_type: str,
    bindings: Iterable[Binding],
    routing_key: str,
    headers: Mapping[str, Any],
) -> list[str]:
    """Names of the queues a message reaches, each once, in binding order.

    A queue bound several ways still gets one copy, as in RabbitMQ.
    """
    queues: dict[str, None] = {}  # an ordered set
    for binding in bindings:
        if binding.queue not in queues and _binding_matches(
            exchange_type, binding, routing_key, headers
        ):
            queues[binding.queue] = None
    return list(queues)


def _binding_matches(
    exchange_type: str, binding: Binding, routing_key: str, headers: Mapping[str, Any]
) -> bool:
    if exchange_type == "fanout":
        return True
    if exchange_type == "direct":
        return binding.routing_key == routing_key
    if exchange_type == "topic":
        return topic_matches(binding.routing_key, routing_key)
    if exchange_type == "headers":
        return headers_match(binding.arguments, headers)
    raise ValueError(f"unknown exchange type {exchange_type!r}")


def _words(key: str) -> list[str]:
    # RabbitMQ treats the empty key as zero words, so "#" matches it and "*"
    # does not; "a..b" has an empty middle word.
    return key.split(".") if key else []


def topic_matches(pattern: str, routing_key: str) -> bool:
    """``*`` matches exactly one word, ``#`` zero or more (words split on ``.``)."""
    return _match_words(_words(pattern), _words(routing_key))


def _match_words(pattern: list[str], words: list[str]) -> bool:
    # Iterative matcher with backtracking to the last "#" (like glob matching),
    # so adversarial patterns stay linear-ish instead of exponential.
    p = w = 0
    star_p, star_w = -1, 0
    while w < len(words):
        if p < len(pattern) and pattern[p] == "#":
            star_p, star_w = p, w
            p += 1
        elif p < len(pattern) and pattern[p] in ("*", words[w]):
            p += 1
            w += 1
        elif star_p >= 0:
            # let the last "#" swallow one more word and retry from there
            star_w += 1
            p, w = star_p + 1, star_w
        else:
            return False
    return all(word == "#" for word in pattern[p:])


def headers_match(binding_arguments: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
    """The headers-exchange rule, selected by the binding's ``x-match``.

    ``all`` (the default) or ``any`` of the binding's keys must match; keys
    starting with ``x-`` are only compared by ``all-with-x``/``any-with-x``.
    A binding value of ``None`` (AMQP void) only asks for the header to be
    present. With no keys to compare, ``all`` matches every message and
    ``any`` none. Call `check_x_match` when binding.
    """
    mode = binding_arguments.get("x-match", "all")
    with_x = mode.endswith("-with-x")
    wanted = [
        (key, value)
        for key, value in binding_arguments.items()
        if key != "x-match" and (with_x or not key.startswith("x-"))
    ]
    results = (
        key in headers and (value is None or _field_equal(value, headers[key]))
        for key, value in wanted
    )
    return any(results) if mode.startswith("any") else all(results)


def check_x_match(binding_arguments: Mapping[str, Any]) -> str | None:
    """Why a headers binding is invalid (RabbitMQ refuses it with 406), or None."""
    mode = binding_arguments.get("x-match", "all")
    if mode not in X_MATCH_MODES:
        return f"invalid x-match field value {mode!r}; expected one of {', '.join(X_MATCH_MODES)}"
    return None


def _field_equal(a: Any, b: Any) -> bool:
    # RabbitMQ compares Erlang terms with ==: 1 matches 1.0, but booleans are
    # atoms (True does not match 1), and str and bytes are both binaries.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (str, bytes)) and isinstance(b, (str, bytes)):
        return _as_bytes(a) == _as_bytes(b)
    return bool(a == b)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


# -- header tables ---------------------------------------------------------


def copy_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deep, independent copy of a header table, checked like the wire would.

    Queued messages must not change when the publisher later mutates its
    dict, and each delivery must get its own copy. Values take the shape they
    would after an AMQP round trip (tuple -> list, bytearray -> bytes);
    values AMQP cannot carry raise `TypeError` (`ValueError` for integers out
    of the signed 64-bit range, and for tables nested deeper than
    `MAX_HEADER_NESTING`, which the AMQP codec refuses too) instead of
    surfacing only against RabbitMQ.
    """
    if not headers:
        return {}
    return _copy_table(headers, 1)


def _check_depth(depth: int) -> None:
    if depth > MAX_HEADER_NESTING:  # as the AMQP codec refuses to encode them
        raise ValueError(f"header tables and arrays nested deeper than {MAX_HEADER_NESTING} levels")


def _copy_table(table: Mapping[str, Any], depth: int) -> dict[str, Any]:
    _check_depth(depth)
    copied = {}
    for key, value in table.items():
        if not isinstance(key, str):
            raise TypeError(f"header table keys must be str, not {type(key).__name__}")
        if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
            raise ValueError(f"header key longer than {_MAX_KEY_BYTES} bytes: {key[:40]!r}...")
        copied[key] = _copy_value(value, depth)
    return copied


# immutable values AMQP can carry (bool is an int, but needs no range check)
_SCALARS = (bool, str, bytes, float, decimal.Decimal, datetime.datetime, type(None))


def _copy_value(value: Any, depth: int) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"header integer out of the signed 64-bit range: {value}")
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, Mapping):
        return _copy_table(value, depth + 1)
    if isinstance(value, (list, tuple)):
        _check_depth(depth + 1)
        return [_copy_value(item, depth + 1) for item in value]
    raise TypeError(f"an AMQP header cannot carry {type(value).__name__}: {value!r}")
