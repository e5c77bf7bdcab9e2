"""Trace and call ids in log records: a filter and a JSON formatter.

The tracing worker observer (`nameko._tracing.otel`) puts the ids of the
running worker in a context variable when the worker starts and takes them
out when it ends, so a log record emitted anywhere in a worker (its thread,
or its task on the container's loop) can carry them. Reading them costs a
context variable lookup; no OpenTelemetry call is made per record, unless
outside any worker OpenTelemetry is loaded, where a span of the user's own
may be current.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

__all__ = ["JsonFormatter", "TraceContextFilter", "TraceIds", "current_ids", "enter", "leave"]


class TraceIds(NamedTuple):
    trace_id: str  # 32 hex digits, as W3C traceparent writes it
    span_id: str  # 16 hex digits
    call_id: str  # nameko's worker_ctx.call_id


_NONE = TraceIds("", "", "")
_current: ContextVar[TraceIds | None] = ContextVar("nameko_trace_ids", default=None)


def enter(ids: TraceIds) -> Token[TraceIds | None]:
    return _current.set(ids)


def leave(token: Token[TraceIds | None]) -> None:
    _current.reset(token)


def current_ids() -> TraceIds | None:
    """The ids of the worker running here, else those of a current
    OpenTelemetry span (the user's own), else None."""
    ids = _current.get()
    if ids is not None:
        return ids
    trace = sys.modules.get("opentelemetry.trace")  # never imported from here
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return TraceIds(format(context.trace_id, "032x"), format(context.span_id, "016x"), "")


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id``, ``span_id`` and ``call_id`` to every record (empty
    strings outside a traced worker), for formats such as
    ``%(trace_id)s %(call_id)s %(message)s``. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id, record.span_id, record.call_id = current_ids() or _NONE
        return True


_IDS = TraceIds._fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``,
    ``logger``, ``message``, ``trace_id``/``span_id``/``call_id`` when there
    are some, ``exception`` and ``stack`` when there are, and the record
    attributes named in ``fields`` (e.g. ``["thread", "process"]``, or your
    ``extra=`` keys) when the record has them."""

    def __init__(self, fields: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fields = tuple(fields)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = _record_ids(record)
        entry.update((name, value) for name, value in zip(_IDS, ids, strict=True) if value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for name in self.fields:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        return json.dumps(entry, default=repr, ensure_ascii=False)

    @staticmethod
    def _time(record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def _record_ids(record: logging.LogRecord) -> TraceIds:
    """The ids a `TraceContextFilter` put on the record (it ran on the
    emitting thread), else the ones current here."""
    if hasattr(record, "trace_id"):
        return TraceIds(
            record.trace_id, getattr(record, "span_id", ""), getattr(record, "call_id", "")
        )
    return current_ids() or _NONE
