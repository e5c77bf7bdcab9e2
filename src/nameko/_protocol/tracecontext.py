"""Trace context on the wire (shimeji, issue 14): which headers carry it.

W3C Trace Context (``traceparent``, ``tracestate``) and W3C Baggage
(``baggage``) travel as AMQP headers under exactly those names, so that any
OpenTelemetry consumer reads them. They describe one hop, not the call: a
worker takes them out of its context data (`take_trace_carrier`), so they
are never forwarded as ``nameko.traceparent`` on its onward calls, whether
tracing is on or not. A nameko 2.14 peer does forward what it received as
``nameko.traceparent``; that form decodes to the same key, so a trace goes
on through a 2.14 hop. The values are opaque here: OpenTelemetry's
propagators read and write them (`nameko._tracing`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TRACE_HEADERS", "take_trace_carrier"]

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
