"""``async def`` handlers behind ``@http``, with a real HTTP client: they
await RPC calls, errors become the usual responses, and they run at once."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from nameko.rpc import RpcProxy, rpc
from nameko.testing.utils import find_free_port
from nameko.web.handlers import http

TIMEOUT = 20


class Backend:
    name = "backend"

    @rpc
    async def double(self, x):
        return 2 * x


class Gateway:
    name = "gateway"
    backend = RpcProxy("backend")
    arrived = 0
    everyone: asyncio.Event | None = None

    @http("GET", "/double/<int:value>")
    async def double(self, request, value):
        return json.dumps({"double": await self.backend.double(value)})

    @http("GET", "/fail")
    async def fail(self, request):
        await asyncio.sleep(0)
        raise ValueError("no")

    @http("GET", "/together/<int:size>")
    async def together(self, request, size):
        cls = type(self)
        if cls.everyone is None:
            cls.everyone = asyncio.Event()
        cls.arrived += 1
        if cls.arrived == size:
            cls.everyone.set()
        await asyncio.wait_for(cls.everyone.wait(), TIMEOUT)
        return 200, "all here"


@pytest.fixture
def gateway(start):
    port = find_free_port()
    start(Backend)
    start(Gateway, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", max_workers=20)
    return f"http://127.0.0.1:{port}"


def test_an_async_handler_awaits_an_rpc_call(gateway):
    response = requests.get(f"{gateway}/double/21", timeout=TIMEOUT)
    assert response.status_code == 200 and response.json() == {"double": 42}


def test_an_async_handler_error_is_a_500(gateway):
    response = requests.get(f"{gateway}/fail", timeout=TIMEOUT)
    assert response.status_code == 500 and "ValueError: no" in response.text


def test_async_handlers_run_concurrently(gateway):
    """Each request waits until all 20 are inside the handler."""
    Gateway.arrived, Gateway.everyone = 0, None
    with ThreadPoolExecutor(20) as pool:
        responses = list(
            pool.map(lambda _: requests.get(f"{gateway}/together/20", timeout=TIMEOUT), range(20))
        )
    assert [r.status_code for r in responses] == [200] * 20
