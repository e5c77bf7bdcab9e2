"""``nameko.standalone.aio``: one connection, any number of concurrent calls
from one loop, every reply routed to its caller, safe to share for the life
of an application."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nameko import config as global_config
from nameko._concurrency import Event
from nameko.events import event_handler
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.rpc import rpc
from nameko.standalone.aio import (
    ClusterRpcClient,
    ClusterRpcProxy,
    ServiceRpcClient,
    ServiceRpcProxy,
    event_dispatcher,
)

TIMEOUT = 20


class Echo:
    name = "echo"
    events: list = []
    all_events = Event()

    @rpc
    async def echo(self, value):
        await asyncio.sleep(0)
        return value

    @rpc
    def sync_echo(self, value):
        return value

    @rpc
    async def never(self):
        await asyncio.Event().wait()

    @rpc
    def boom(self):
        raise KeyError("missing")

    @event_handler("outside", "ping")
    def on_ping(self, payload):
        type(self).events.append(payload)
        if len(type(self).events) == 100:
            type(self).all_events.set()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


@pytest.fixture
def echo(start):
    return start(Echo, max_workers=100)


def test_a_thousand_concurrent_calls_each_get_their_own_reply(echo, config):
    async def main():
        async with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc_:
            async_side = await asyncio.gather(*(rpc_.echo.echo(i) for i in range(1000)))
            sync_side = await asyncio.gather(*(rpc_.echo.sync_echo(i) for i in range(500)))
            return async_side, sync_side

    async_side, sync_side = run(main())
    assert async_side == list(range(1000)) and sync_side == list(range(500))


def test_errors_unknown_services_and_timeouts(echo, config):
    async def main():
        async with ClusterRpcProxy(config, timeout=0.3) as rpc_:
            with pytest.raises(RemoteError) as remote:
                await rpc_.echo.boom()
            with pytest.raises(UnknownService):
                await rpc_.nowhere.method()
            with pytest.raises(RpcTimeout):
                await rpc_.echo.never()
            reply = rpc_.echo.echo.call_async("later")
            return remote.value.exc_type, await reply, await reply.result()

    assert run(main()) == ("KeyError", "later", "later")


def test_a_client_made_at_start_up_starts_on_first_use_and_is_shared(echo, config):
    """The FastAPI lifespan pattern: made once, started by the first awaited
    call (many at once here), shared by every task, stopped at shutdown."""
    client = ServiceRpcProxy("echo", config, timeout=TIMEOUT)

    async def request(i):
        return await client.echo(i)

    async def main():
        first = await asyncio.gather(*(request(i) for i in range(50)))
        links = {id(client._link)}
        later = await asyncio.gather(*(request(i) for i in range(50)))
        links.add(id(client._link))
        waiting = client.never.call_async()  # sent at once, awaited below
        await client.stop()
        with pytest.raises(RuntimeError):
            await waiting
        with pytest.raises(RuntimeError):
            await client.echo(1)
        return first, later, links

    first, later, links = run(main())
    assert first == later == list(range(50)) and len(links) == 1


def test_nameko3_style_clients_read_the_global_config(echo, config):
    async def main():
        with global_config.patch(config):
            async with ClusterRpcClient(timeout=TIMEOUT) as rpc_:
                one = await rpc_.echo.echo("cluster")
            async with ServiceRpcClient("echo", timeout=TIMEOUT) as svc:
                two = await svc.echo("service")
        return one, two

    assert run(main()) == ("cluster", "service")


def test_the_async_event_dispatcher_confirms_every_event(echo, config):
    Echo.events, Echo.all_events = [], Event()

    async def main():
        dispatch = event_dispatcher(config)
        await asyncio.gather(*(dispatch("outside", "ping", i) for i in range(100)))

    run(main())
    assert Echo.all_events.wait(TIMEOUT)
    assert sorted(Echo.events) == list(range(100))


def test_one_client_serves_several_event_loops_at_once(echo, config):
    """Django under WSGI runs each async view on a loop of its own: one shared
    client must route each reply to the loop that awaits it."""
    client = ClusterRpcProxy(config, timeout=TIMEOUT)
    results: dict[int, list] = {}

    def on_its_own_loop(n):
        async def calls():
            return await asyncio.gather(*(client.echo.echo(n * 1000 + i) for i in range(100)))

        results[n] = asyncio.run(calls())

    threads = [threading.Thread(target=on_its_own_loop, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    run(client.stop())
    assert results == {n: [n * 1000 + i for i in range(100)] for n in range(4)}
