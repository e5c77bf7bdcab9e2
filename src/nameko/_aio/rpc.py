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

    __slots__ = ("correlation_id", "_pending", "_first", "_task")

    def __init__(self, pending: PendingReply, first: OneShot[None] | None) -> None:
        self.correlation_id = pending.correlation_id
        self._pending = pending
        self._first = first
        self._task: asyncio.Future[Any] | None = None

    async def get_response(self) -> Any:
        """The reply body (``{"result": ..., "error": ...}``)."""
        if self._task is None:
            self._task = asyncio.ensure_future(_await_body(self._pending, self._first))
        return await self._task

    async def result(self) -> Any:
        return decode_reply(await self.get_response())

    def __await__(self) -> Any:
        return self.result().__await__()

    def __repr__(self) -> str:
        return f"<AsyncRpcReply {self.correlation_id}>"


async def _await_body(pending: PendingReply, first: OneShot[None] | None) -> Any:
    timeout = pending.timeout
    try:
        if timeout is None:
            return await _first_then_reply(pending, first)
        return await asyncio.wait_for(_first_then_reply(pending, first), timeout)
    except asyncio.TimeoutError:  # not the builtin TimeoutError on 3.10
        pending.discard()
        raise RpcTimeout(timeout) from None
    except BaseException:  # cancelled, UnknownService...: nobody waits for it now
        pending.discard()
        raise


async def _first_then_reply(pending: PendingReply, first: OneShot[None] | None) -> Any:
    if first is not None:
        await awaitable(first)  # UnknownService for a service nobody consumes for
    return await awaitable(pending.outcome)


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
