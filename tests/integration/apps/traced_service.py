"""A service run with TRACING: true; its spans go to spans.jsonl (in the
working folder) through a BatchSpanProcessor, so they reach the file only
when `nameko run` flushes them at exit."""

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from nameko.rpc import rpc


class JsonLinesExporter(SpanExporter):
    def export(self, spans):
        with open("spans.jsonl", "a") as out:
            for span in spans:
                parent = span.parent.span_id if span.parent else None
                line = {
                    "name": span.name,
                    "trace_id": format(span.context.trace_id, "032x"),
                    "span_id": format(span.context.span_id, "016x"),
                    "parent_id": None if parent is None else format(parent, "016x"),
                }
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(), schedule_delay_millis=60_000))
trace.set_tracer_provider(provider)


class Traced:
    name = "traced"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def echo(self, value):
        logging.getLogger("traced").info("echoing %s", value)
        return value
