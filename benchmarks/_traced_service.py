"""The echo service of ``bench_tracing.py``, with an OpenTelemetry SDK
provider whose exporter drops every span (the SDK's work is measured, not an
exporter's network). Run with ``TRACING: true`` or false."""

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from nameko.rpc import rpc


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def install_provider() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    trace.set_tracer_provider(provider)


install_provider()


class EchoOff:
    name = "echo_off"

    @rpc
    def echo(self, value):
        return value


class EchoOn:
    name = "echo_on"

    @rpc
    def echo(self, value):
        return value
