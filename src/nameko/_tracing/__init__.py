"""Traces and log correlation (docs/architecture.md D27).

``TRACING: true`` in a config turns OpenTelemetry tracing on for whatever
is built from that config: a container (its workers get spans, its
publishers put ``traceparent`` in the AMQP headers, its ``@http`` requests
get server spans), a standalone RPC client, a standalone event dispatcher.
Spans go to OpenTelemetry's global ``TracerProvider``, which the user sets
up the standard way (``opentelemetry-instrument``, or in code).

This module imports nothing from OpenTelemetry: with tracing off, nothing
of it is loaded, and every hook in the messaging code is one ``is None``
test. `tracing_for` loads `nameko._tracing.otel` the first time a config
asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nameko.exceptions import ConfigurationError

if TYPE_CHECKING:
    from nameko._tracing.otel import Tracing

__all__ = [
    "HTTP_ROUTE_ENVIRON_KEY",
    "TRACING_CONFIG_KEY",
    "tracing_enabled",
    "tracing_feature",
    "tracing_for",
]

TRACING_CONFIG_KEY = "TRACING"
#: where the web server leaves the matched url rule, which names the request's span
HTTP_ROUTE_ENVIRON_KEY = "nameko.http_route"

_log = logging.getLogger("nameko.tracing")
_OFF = frozenset({"", "0", "false", "no", "off"})


def tracing_enabled(config: Mapping[str, Any]) -> bool:
    """Whether ``TRACING`` is on (``true``; strings from environment
    variables such as ``"false"`` or ``"0"`` count as off)."""
    value = config.get(TRACING_CONFIG_KEY)
    if isinstance(value, str):
        return value.strip().lower() not in _OFF
    return bool(value)


def tracing_for(config: Mapping[str, Any]) -> Tracing | None:
    """The process's `Tracing` if ``config`` turns tracing on, else None.

    Raises `ConfigurationError` when it is on but OpenTelemetry is missing."""
    if not tracing_enabled(config):
        return None
    try:
        from nameko._tracing.otel import shared_tracing
    except ImportError as exc:
        raise ConfigurationError(
            f"TRACING is on but OpenTelemetry can't be imported ({exc}): "
            "pip install 'shimeji[tracing]' (opentelemetry-api and opentelemetry-sdk)"
        ) from exc
    return shared_tracing()


def tracing_feature(runner: Any, config: dict[str, Any]) -> Callable[[], None] | None:
    """``nameko run``'s tracing feature (`nameko.cli._features`): the
    containers already trace themselves from the config; this says where
    the spans go, warns when nowhere, and flushes them at exit."""
    tracing = tracing_for(config)
    if tracing is None:
        return None
    provider = tracing.describe_provider()
    if provider is None:
        _log.warning(
            "TRACING is on but no OpenTelemetry TracerProvider is set: spans are dropped "
            "(run under opentelemetry-instrument, or set one in code)"
        )
    else:
        _log.info("tracing on: spans go to %s", provider)
    return tracing.flush
