"""``async def`` methods behind every broker entrypoint, on both brokers: the
worker lifecycle, ``max_workers``, exceptions and sync methods beside them."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nameko._concurrency import Event
from nameko.events import EventDispatcher, event_handler
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from nameko.messaging import Publisher, consume
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.timer import timer
from tests.waiting import wait_until

TIMEOUT = 20


class Recorder(DependencyProvider):
    """Records every lifecycle hook with the method it ran for."""

    def setup(self):
        self.calls = []

    def get_dependency(self, worker_ctx):
        self.calls.append(("get_dependency", worker_ctx.entrypoint.method_name))
        return self.calls

    def worker_setup(self, worker_ctx):
        self.calls.append(("worker_setup", worker_ctx.entrypoint.method_name))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        outcome = "error" if exc_info else repr(result)
        self.calls.append(("worker_result", worker_ctx.entrypoint.method_name, outcome))

    def worker_teardown(self, worker_ctx):
        self.calls.append(("worker_teardown", worker_ctx.entrypoint.method_name))


class Mixed:
    name = "mixed"
    recorder = Recorder()

    @rpc
    async def add(self, a, b):
        await asyncio.sleep(0)
        self.recorder.append(("method", "add"))
        return a + b

    @rpc
    def sync_add(self, a, b):
        self.recorder.append(("method", "sync_add"))
        return a + b

    @rpc
    async def boom(self):
        await asyncio.sleep(0)
        raise ValueError("async boom")

    @rpc
    async def where(self):
        return threading.current_thread().name


def hooks_of(calls, method):
    return [call[0] for call in calls if call[1] == method]


def test_async_and_sync_methods_run_the_same_hooks_in_the_same_order(start, config):
    container = start(Mixed)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        assert rpc_.mixed.add(1, 2) == 3
        assert rpc_.mixed.sync_add(1, 2) == 3
    calls = get_recorder(container).calls
    expected = ["get_dependency", "worker_setup", "method", "worker_result", "worker_teardown"]
    assert hooks_of(calls, "add") == expected
    assert hooks_of(calls, "sync_add") == expected
    assert ("worker_result", "add", "3") in calls


def test_an_async_method_runs_on_the_loop_thread_not_the_io_thread(start, config):
    start(Mixed)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        assert rpc_.mixed.where() == "mixed-loop"


def test_an_async_exception_reaches_the_caller_and_worker_result(start, config):
    container = start(Mixed)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        with pytest.raises(RemoteError) as raised:
            rpc_.mixed.boom()
        assert raised.value.exc_type == "ValueError"
        assert "async boom" in raised.value.value
        assert rpc_.mixed.add(2, 2) == 4  # the service is unharmed
    calls = get_recorder(container).calls
    assert ("worker_result", "boom", "error") in calls
    assert hooks_of(calls, "boom")[-1] == "worker_teardown"


def get_recorder(container):
    return next(dep for dep in container.dependencies if isinstance(dep, Recorder))


# -- max_workers: 500 coroutines at once on a handful of threads -------------------------


class Crowd:
    name = "crowd"
    arrived = 0
    everyone_here: asyncio.Event | None = None

    @rpc
    async def gather(self, size):
        cls = type(self)
        if cls.everyone_here is None:
            cls.everyone_here = asyncio.Event()  # made on the container's loop
        cls.arrived += 1
        if cls.arrived == size:
            cls.everyone_here.set()
        await asyncio.wait_for(cls.everyone_here.wait(), TIMEOUT)
        return threading.active_count()


def test_max_workers_500_runs_500_coroutines_at_once_on_a_few_threads(start, config):
    """Each call waits until all 500 are inside the method: only possible if
    all 500 run at the same time."""
    threads_before = threading.active_count()
    start(Crowd, max_workers=500)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
        replies = [rpc_.crowd.gather.call_async(500) for _ in range(500)]
        threads_seen = [reply.result() for reply in replies]
    assert max(threads_seen) - threads_before < 12  # loop, I/O, pool: not one per worker


class Gate:
    name = "gate"
    running = 0
    peak = 0
    opened: Event = Event()

    @rpc
    async def hold_async(self):
        await self._hold()

    @rpc
    def hold_sync(self):
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        cls.opened.wait(TIMEOUT)
        cls.running -= 1

    async def _hold(self):
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        while not cls.opened.is_set():
            await asyncio.sleep(0.01)
        cls.running -= 1


def test_max_workers_bounds_sync_and_async_workers_together(start):
    """Spawned straight on the container (a broker's prefetch would bound
    them before they got there): three run, the other three wait their turn."""
    Gate.running = Gate.peak = 0
    Gate.opened = Event()
    container = start(Gate, max_workers=3)
    entrypoints = {ep.method_name: ep for ep in container.entrypoints}
    done = []

    def finished(worker_ctx, result, exc_info):
        done.append(exc_info)
        return result, exc_info

    for name in ("hold_async", "hold_sync") * 3:
        container.spawn_worker(entrypoints[name], (), {}, handle_result=finished)
    wait_until(lambda: Gate.running == 3, TIMEOUT, what="three workers running")
    assert container._slots.pending == 3
    Gate.opened.set()
    wait_until(lambda: len(done) == 6, TIMEOUT, what="all six done")
    assert done == [None] * 6
    assert Gate.peak == 3


# -- the other entrypoints -------------------------------------------------------------


class Handlers:
    name = "handlers"
    dispatch = EventDispatcher()
    publish = Publisher(queue=None)
    seen: list = []
    done = Event()
    ticked = Event()

    @event_handler("source", "happened")
    async def on_event(self, payload):
        await asyncio.sleep(0)
        type(self).seen.append(("event", payload))
        await self.dispatch("relayed", payload)  # awaitable dispatch inside

    @event_handler("handlers", "relayed")
    def on_relayed(self, payload):
        type(self).seen.append(("relayed", payload))
        type(self).done.set()

    @timer(interval=0.05)
    async def tick(self):
        await asyncio.sleep(0)
        type(self).ticked.set()


def test_event_handler_and_timer_run_async_methods(start, config):
    Handlers.seen, Handlers.done, Handlers.ticked = [], Event(), Event()
    start(Handlers)
    with event_dispatcher(config) as dispatch:
        dispatch("source", "happened", {"n": 1})
    assert Handlers.done.wait(TIMEOUT)
    assert Handlers.seen == [("event", {"n": 1}), ("relayed", {"n": 1})]
    assert Handlers.ticked.wait(TIMEOUT)


class Consumer:
    name = "consumer"
    got: list = []
    done = Event()


def make_consumer(queue):
    class QueueConsumer(Consumer):
        @consume(queue)
        async def handle(self, payload):
            await asyncio.sleep(0)
            type(self).got.append(payload)
            type(self).done.set()

    return QueueConsumer


def test_consume_runs_an_async_method(start, config):
    from kombu import Exchange, Queue

    from nameko.amqp.publish import Publisher as AmqpPublisher

    exchange = Exchange("async_exchange", type="direct")
    queue = Queue("async_queue", exchange=exchange, routing_key="jobs")
    Consumer.got, Consumer.done = [], Event()
    start(make_consumer(queue))
    AmqpPublisher(config["AMQP_URI"], exchange=exchange, declare=[queue]).publish(
        {"job": 7}, routing_key="jobs"
    )
    assert Consumer.done.wait(TIMEOUT)
    assert Consumer.got == [{"job": 7}]
