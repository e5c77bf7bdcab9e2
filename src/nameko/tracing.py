"""Traces and log correlation (shimeji; docs/architecture.md D27).

Tracing is switched on by configuration, not code: ``TRACING: true`` in a
service's config (``nameko run``, ``container_factory``, ``ServiceContainer``)
or in the config of a standalone client or event dispatcher. It needs
``pip install 'shimeji[tracing]'`` (OpenTelemetry); spans go to the global
``TracerProvider``, set up the usual OpenTelemetry way.

For logs, in a ``LOGGING`` dictConfig::

    LOGGING:
      version: 1
      filters:
        trace: {"()": nameko.tracing.TraceContextFilter}
      formatters:
        json: {"()": nameko.tracing.JsonFormatter}
      handlers:
        console: {class: logging.StreamHandler, filters: [trace], formatter: json}
      root: {level: INFO, handlers: [console]}
"""

from nameko._tracing import TRACING_CONFIG_KEY
from nameko._tracing.logs import JsonFormatter, TraceContextFilter

__all__ = ["TRACING_CONFIG_KEY", "JsonFormatter", "TraceContextFilter"]
