"""WorkerContext: everything one entrypoint firing knows about itself."""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nameko._ids import new_id
from nameko._protocol.calls import extend_call_id_stack, make_call_id
from nameko._protocol.deadlines import DEADLINE_CONTEXT_KEY, decode_deadline, encode_deadline
from nameko._protocol.tracecontext import take_trace_carrier, with_received_trace
from nameko.constants import (
    CALL_ID_STACK_CONTEXT_KEY,
    DEFAULT_PARENT_CALLS_TRACKED,
    PARENT_CALLS_CONFIG_KEY,
)

if TYPE_CHECKING:
    from nameko._runtime.extensions import Entrypoint

__all__ = ["SENT_AT_KEY", "WorkerContext", "new_call_id"]

#: where an entrypoint puts the AMQP ``timestamp`` of the message that made a
#: worker (Unix seconds) in ``context_data``; `WorkerContext` takes it out
#: (as ``sent_at``), so it never travels on as a header. No header decodes
#: to a name with a NUL in it.
SENT_AT_KEY = "\x00sent_at"


def new_call_id() -> str:
    return new_id()


class WorkerContext:
    """Context of one worker, as nameko 2.14 defines it.

    ``data`` is the dict given (mutated: ``call_id_stack`` is popped from it
    and becomes the parent stack). `context_data` is a fresh copy with our own
    call id stack added, which is what goes out as headers on onward calls.

    ``deadline`` (shimeji): when the caller stops waiting, in Unix seconds,
    for an entrypoint that observes deadlines (``@rpc``); None otherwise.
    The ``call_deadline`` item is taken out of ``data`` whatever the
    entrypoint, and put back into `context_data` only when observed, so an
    RPC worker's onward calls inherit its budget and an event handler's
    never inherit the budget of the call that dispatched the event.

    ``trace_carrier`` (shimeji): the ``traceparent``/``tracestate``/``baggage``
    items taken out of ``data`` (None if there were none): the parent of this
    worker's span when tracing is on, never forwarded on onward calls.
    """

    _providers_set_up: list[Any]  # set by the container once the providers' set-up ran

    def __init__(
        self,
        container: Any,
        service: Any,
        entrypoint: Entrypoint,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.container = container
        self.config = container.config
        self.service = service
        self.entrypoint = entrypoint
        self.service_name = container.service_name
        self.args = args if args is not None else ()
        self.kwargs = kwargs if kwargs is not None else {}
        self.data = data if data is not None else {}
        self.parent_call_stack: list[str] = self.data.pop(CALL_ID_STACK_CONTEXT_KEY, None) or []
        inherited = self.data.pop(DEADLINE_CONTEXT_KEY, None)
        observed = getattr(entrypoint, "observes_deadline", False) is True
        self.deadline: float | None = decode_deadline(inherited) if observed else None
        self.trace_carrier = take_trace_carrier(self.data)
        #: when the triggering message was published (Unix seconds), if it said
        self.sent_at: int | None = self.data.pop(SENT_AT_KEY, None)
        self._call_id: str | None = None
        self._call_id_stack: list[str] | None = None
        self._in_flight: list[Callable[[], None]] | None = None  # see before_result

    @property
    def call_id(self) -> str:
        if self._call_id is None:
            self._call_id = make_call_id(
                self.service_name, self.entrypoint.method_name, _call_id_factory()()
            )
        return self._call_id

    @property
    def call_id_stack(self) -> list[str]:
        """A new list on every access, as in nameko 2.14: extensions edit the
        list they got (nameko-amqp-retry appends ".backoff" to its last id
        for the headers it republishes) without changing this worker's stack."""
        if self._call_id_stack is None:
            tracked = self.config.get(PARENT_CALLS_CONFIG_KEY, DEFAULT_PARENT_CALLS_TRACKED)
            self._call_id_stack = extend_call_id_stack(
                self.parent_call_stack, self.call_id, tracked
            )
        return list(self._call_id_stack)

    @property
    def context_data(self) -> dict[str, Any]:
        data = dict(self.data)
        data[CALL_ID_STACK_CONTEXT_KEY] = self.call_id_stack
        if self.deadline is not None:
            data[DEADLINE_CONTEXT_KEY] = encode_deadline(self.deadline)
        if self.trace_carrier is not None:  # readable here, never forwarded as they came
            return with_received_trace(data, self.trace_carrier)
        return data

    def time_remaining(self) -> float | None:
        """Seconds until the caller's deadline (negative once passed); None
        when the call has no deadline."""
        if self.deadline is None:
            return None
        return self.deadline - time.time()

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` method's worker (shimeji): dependencies
        that have an awaitable flavour (``RpcProxy``, ``EventDispatcher``...)
        inject that one."""
        found = self.__dict__.get("_is_async")
        if found is None:  # asked by every provider of every worker: looked up once
            cls = type(self.service)
            method = getattr(cls, getattr(self.entrypoint, "method_name", "") or "", None)
            found = self.__dict__["_is_async"] = inspect.iscoroutinefunction(method)
        return found

    @property
    def origin_call_id(self) -> str | None:
        return self.parent_call_stack[0] if self.parent_call_stack else None

    @property
    def immediate_parent_call_id(self) -> str | None:
        return self.parent_call_stack[-1] if self.parent_call_stack else None

    def before_result(self, wait: Callable[[], None]) -> None:
        """Have ``wait`` run after the method returns and before its result is
        reported (reply sent, message acked); if it raises, the worker fails
        with that error. Dependencies use it to leave work in flight during the
        method, e.g. `EventDispatcher`'s confirms. Outside the method's run
        (no container worker, or a thread that outlives the method) ``wait``
        runs at once."""
        pending = getattr(self, "_in_flight", None)
        if pending is None:
            wait()
        else:
            pending.append(wait)

    def _collect_in_flight(self) -> None:
        """The container's side: from now on `before_result` collects."""
        self._in_flight = []

    def _take_in_flight(self) -> list[Callable[[], None]]:
        """The container's side: what was registered while the method ran."""
        pending, self._in_flight = getattr(self, "_in_flight", None), None
        return pending or []

    def __repr__(self) -> str:
        method = getattr(self.entrypoint, "method_name", None)
        return f"<WorkerContext [{self.service_name}.{method}] at 0x{id(self):x}>"


def _call_id_factory() -> Any:
    # Looked up at call time so that patching `nameko.containers.new_call_id`
    # (as the ``predictable_call_ids`` fixture and nameko-era tests do) works.
    public = sys.modules.get("nameko.containers")
    return getattr(public, "new_call_id", new_call_id)
