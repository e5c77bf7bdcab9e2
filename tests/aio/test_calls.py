"""Awaitable dependencies inside ``async def`` workers, and what crosses a
hop: context data and call id stacks (sync -> async -> sync), timeouts,
cancellation, graceful stop and kill with coroutines in flight."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nameko._concurrency import Event, OneShot
from nameko.contextdata import Language
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import ClusterRpc, RpcProxy, ServiceRpc, rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.waiting import wait_until

TIMEOUT = 20


class CallStack(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return list(worker_ctx.call_id_stack)


class Leaf:
    """Sync: the end of the chain."""

    name = "leaf"
    language = Language()
    stack = CallStack()

    @rpc
    def context(self):
        return {"language": self.language, "stack": self.stack}

    @rpc
    def double(self, x):
        return 2 * x


class Middle:
    """Async, calling the sync leaf three ways (2.x proxy, nameko 3 clients)."""

    name = "middle"
    leaf = RpcProxy("leaf")
    leaf3 = ServiceRpc("leaf")
    cluster = ClusterRpc()
    nowhere = RpcProxy("nowhere")
    language = Language()
    stack = CallStack()

    @rpc
    async def context(self):
        theirs = await self.leaf.context()
        return {"language": self.language, "stack": self.stack, "leaf": theirs}

    @rpc
    async def fan_out(self, n):
        replies = [self.leaf3.double.call_async(i) for i in range(n)]
        firsts = await asyncio.gather(*(reply.result() for reply in replies))
        again = await replies[0]  # an awaited reply keeps its outcome
        return firsts, again, await self.cluster.leaf.double(21)

    @rpc
    async def unknown(self):
        try:
            await self.nowhere.anything()
        except UnknownService as exc:
            return str(exc)


class Top:
    """Sync again, calling the async middle."""

    name = "top"
    middle = RpcProxy("middle")
    stack = CallStack()

    @rpc
    def context(self):
        return {"stack": self.stack, "middle": self.middle.context()}


def test_context_data_and_call_stacks_cross_sync_and_async_hops(start, config):
    for cls in (Leaf, Middle, Top):
        start(cls)
    with ClusterRpcProxy(config, context_data={"language": "fr"}, timeout=TIMEOUT) as rpc_:
        top = rpc_.top.context()
    middle, leaf = top["middle"], top["middle"]["leaf"]
    assert middle["language"] == leaf["language"] == "fr"
    assert len(top["stack"]) == 2 and len(middle["stack"]) == 3 and len(leaf["stack"]) == 4
    assert middle["stack"][:2] == top["stack"] and leaf["stack"][:3] == middle["stack"]
    assert middle["stack"][-1].startswith("middle.context.")
    assert leaf["stack"][-1].startswith("leaf.context.")


def test_awaitable_calls_and_call_async_from_an_async_worker(start, config):
    start(Leaf)
    start(Middle)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        firsts, again, cluster = rpc_.middle.fan_out(20)
        assert firsts == [2 * i for i in range(20)] and again == 0 and cluster == 42
        assert rpc_.middle.unknown() == "Unknown service `nowhere`"


# -- timeouts, cancellation, stopping ------------------------------------------------


class Slow:
    name = "slow"
    started = 0
    torn_down: list = []
    release: Event = Event()

    class Teardowns(DependencyProvider):
        def worker_teardown(self, worker_ctx):
            Slow.torn_down.append(worker_ctx.entrypoint.method_name)

    teardowns = Teardowns()

    @rpc
    async def wait_for_release(self):
        type(self).started += 1
        while not type(self).release.is_set():
            await asyncio.sleep(0.01)
        return "released"

    @rpc
    async def forever(self):
        type(self).started += 1
        await asyncio.Event().wait()


class Impatient:
    name = "impatient"
    slow = RpcProxy("slow", timeout=0.2)

    @rpc
    async def ask(self):
        try:
            await self.slow.forever()
        except RpcTimeout as exc:
            return f"gave up after {exc}"


@pytest.fixture
def slow():
    Slow.started, Slow.torn_down, Slow.release = 0, [], Event()
    return Slow


def test_a_timeout_cancels_the_awaiting_caller(start, config, slow):
    start(Slow)
    start(Impatient)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        assert rpc_.impatient.ask() == "gave up after 0.2"


def test_graceful_stop_waits_for_coroutines_in_flight(start, config, slow):
    container = start(Slow)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        replies = [rpc_.slow.wait_for_release.call_async() for _ in range(5)]
        wait_until(lambda: Slow.started == 5, TIMEOUT, what="five coroutines running")
        stopped = OneShot()
        threading.Thread(target=lambda: stopped.send(container.stop())).start()
        wait_until(lambda: container._stopping, TIMEOUT, what="the stop under way")
        assert not stopped.ready()  # waiting for the five
        Slow.release.set()
        assert [reply.result() for reply in replies] == ["released"] * 5
        stopped.get(TIMEOUT)
    assert Slow.torn_down.count("wait_for_release") == 5


def test_the_drain_timeout_cancels_coroutines_and_they_still_reply(start, config, slow):
    container = start(Slow, ASYNC_DRAIN_TIMEOUT=0.2)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        reply = rpc_.slow.forever.call_async()
        wait_until(lambda: Slow.started == 1, TIMEOUT, what="the coroutine running")
        container.stop()
        with pytest.raises(RemoteError) as raised:
            reply.result()
    assert raised.value.exc_type == "CancelledError"
    assert Slow.torn_down == ["forever"]


def test_kill_cancels_coroutines_in_flight(start, config, slow):
    container = start(Slow)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        rpc_.slow.forever.call_async()
        wait_until(lambda: Slow.started == 1, TIMEOUT, what="the coroutine running")
    container.kill()
    assert Slow.torn_down == ["forever"]  # cancelled, and its hooks still ran
    assert container._async_workers.loop_thread.loop.is_closed()
