"""Awaitable RPC calls: what ``RpcProxy``, ``ClusterRpc`` and ``ServiceRpc``
inject into an ``async def`` worker, and what the asyncio standalone client
hands out.

``await proxy.method(x)`` publishes the request and awaits the reply;
``proxy.method.call_async(x)`` publishes now and returns an `AsyncRpcReply`
to await later (``await reply`` or ``await reply.result()``). The request
goes through the same `RpcCaller` as sync calls (same wire format, same
reply queue and routing, same pipelining of confirms); only the waiting is
different: the caller never blocks, it awaits the `OneShot` the broker's
I/O thread settles (`nameko._aio.bridge`). The call's timeout cancels the
await and raises `RpcTimeout`; a cancelled await stops waiting for the
reply (a late reply is dropped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from nameko._aio.bridge import awaitable
from nameko._concurrency import OneShot
from nameko._protocol.envelopes import decode_reply
from nameko._rpc.caller import RpcCaller
from nameko._rpc.replies import PendingReply
from nameko.exceptions import RpcTimeout

__all__ = ["AsyncProxy", "AsyncRpcReply"]

ContextData = Callable[[], Mapping[str, Any]]
StartClient = Callable[[], Awaitable[RpcCaller]]


class AsyncRpcReply:
    """A call in flight: await it (or its `result`) for the value or the
    remote error. The outcome is kept: awaiting again gives it again."""

    __slots__ = ("correlation_id", "_pending", "_first", "_outcome")

    def __init__(self, pending: PendingReply, first: OneShot[None] | None) -> None:
        self.correlation_id = pending.correlation_id
        self._pending = pending
        self._first = first
        self._outcome: tuple[Any, BaseException | None] | None = None

    async def get_response(self) -> Any:
        """The reply body (``{"result": ..., "error": ...}``)."""
        if self._outcome is None:
            try:
                self._outcome = (await _await_body(self._pending, self._first), None)
            except asyncio.CancelledError:
                raise  # this await was cancelled: not an outcome of the call
            except Exception as failure:
                self._outcome = (None, failure)
        body, error = self._outcome
        if error is not None:
            raise error
        return body

    async def result(self) -> Any:
        return decode_reply(await self.get_response())

    def __await__(self) -> Any:
        return self.result().__await__()

    def __repr__(self) -> str:
        return f"<AsyncRpcReply {self.correlation_id}>"


async def _await_body(pending: PendingReply, first: OneShot[None] | None) -> Any:
    """The reply body; `RpcTimeout` once ``pending.timeout`` has passed (a
    timer on the loop, not a task per call as ``asyncio.wait_for`` makes)."""
    timeout = pending.timeout
    loop = asyncio.get_running_loop()
    timer = None
    try:
        if first is not None:
            waiting = awaitable(first, loop)
            timer = _expire_after(loop, timeout, waiting, timer)
            await waiting  # UnknownService for a service nobody consumes for
        reply = awaitable(pending.outcome, loop)
        timer = _expire_after(loop, timeout, reply, timer)
        return await reply
    except BaseException:  # timed out, cancelled, UnknownService...: nobody waits now
        pending.discard()
        raise
    finally:
        if timer is not None:
            timer.cancel()


def _expire_after(
    loop: asyncio.AbstractEventLoop,
    timeout: float | None,
    future: asyncio.Future[Any],
    timer: asyncio.TimerHandle | None,
) -> asyncio.TimerHandle | None:
    """Fail ``future`` with `RpcTimeout` at the call's deadline (one timer per
    call: a first confirm and the reply share it)."""
    if timeout is None:
        return None
    deadline = timer.when() if timer is not None else loop.time() + timeout
    if timer is not None:
        timer.cancel()
    return loop.call_at(deadline, _time_out, future, timeout)


def _time_out(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(RpcTimeout(timeout))


class AsyncProxy:
    """``proxy.service.method``: each attribute (or item) narrows the target,
    first the service, then the method. ``context_data()`` is read at each
    call (a worker's call id stack, or a standalone client's data)."""

    # class-level defaults: `__getattr__` must never recurse on a half-built instance
    service_name: str | None = None
    method_name: str | None = None

    def __init__(
        self,
        caller: RpcCaller | None,
        context_data: ContextData,
        service_name: str | None = None,
        method_name: str | None = None,
        start: StartClient | None = None,
    ) -> None:
        self.caller = caller
        self.context_data = context_data
        self.service_name = service_name
        self.method_name = method_name
        self._start = start  # a standalone client not started yet: starts on first await

    @property
    def identifier(self) -> str:
        return f"{self.service_name or '*'}.{self.method_name or '*'}"

    def __getattr__(self, name: str) -> AsyncProxy:
        if name.startswith("_"):  # never a service or a method (hasattr(), mocks, copy)
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> AsyncProxy:
        if self.method_name is not None:
            raise AttributeError(name)
        if self.service_name is None:
            return AsyncProxy(self.caller, self.context_data, name, start=self._start)
        return AsyncProxy(
            self.caller, self.context_data, self.service_name, name, start=self._start
        )

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.caller is None and self._start is not None:
            self.caller = await self._start()
        return await self.call_async(*args, **kwargs)

    def call_async(self, *args: Any, **kwargs: Any) -> AsyncRpcReply:
        """Publish the request now (without blocking); await the reply later."""
        if self.service_name is None or self.method_name is None:
            raise ValueError(f"Cannot call unspecified method {self.identifier}")
        if self.caller is None:
            raise RuntimeError("the client is not started: `await client.start()` first")
        pending, first = self.caller.call_nowait(
            self.service_name, self.method_name, args, kwargs, self.context_data()
        )
        return AsyncRpcReply(pending, first)

    def __repr__(self) -> str:
        return f"<AsyncProxy: {self.identifier}>"
