"""Trace context on the wire (shimeji): which headers carry it.

W3C Trace Context (``traceparent``, ``tracestate``) and W3C Baggage
(``baggage``) travel as AMQP headers under exactly those names, so that any
OpenTelemetry consumer reads them. They describe one hop, not the call: a
worker takes them out of its context data (`take_trace_carrier`), so they
are never forwarded as ``nameko.traceparent`` on its onward calls, whether
tracing is on or not. A nameko 2.14 peer does forward what it received as
``nameko.traceparent``; that form decodes to the same key, so a trace goes
on through a 2.14 hop. The values are opaque here: OpenTelemetry's
propagators read and write them (`nameko._tracing`).

Instrumentation written for nameko 3 (opentelemetry-instrumentation-nameko)
reads a worker's parent from its context data and writes its own client
span's ``traceparent`` into the context data a call sends. So a worker's
`ContextData` holds the trace headers it received, remembered as
``received``, and each one still holding the value received is left out
when context data becomes headers: a value someone replaced goes
out, the hop's own never does.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TRACE_HEADERS",
    "ContextData",
    "received_trace",
    "take_trace_carrier",
    "with_received_trace",
]

TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


def take_trace_carrier(data: dict[str, Any]) -> dict[str, Any] | None:
    """Remove the trace headers from ``data``; what was there, or None."""
    carrier = None
    for name in TRACE_HEADERS:
        value = data.pop(name, None)
        if value is not None:
            if carrier is None:
                carrier = {}
            carrier[name] = value
    return carrier


class ContextData(dict[str, Any]):
    """A worker's context data with the trace headers it received."""

    __slots__ = ("received",)
    received: dict[str, Any]


def with_received_trace(data: dict[str, Any], received: dict[str, Any]) -> ContextData:
    """``data`` and the trace headers ``received``, remembered as such."""
    context_data = ContextData(data)  # dict's own constructor: no Python-level __init__
    context_data.update(received)
    context_data.received = received
    return context_data


def received_trace(context_data: Any) -> dict[str, Any] | None:
    """The trace headers a worker's context data holds as it received them
    (None for any other mapping): `encode_context_headers` leaves out each
    item still equal to one of these."""
    return context_data.received if type(context_data) is ContextData else None
