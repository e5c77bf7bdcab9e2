"""Seed 004 the async way (examples/seed004_async): the FastAPI app under a
real uvicorn, its lifespan's shared asyncio client, an ``async def`` service
on a real RabbitMQ, and 200 concurrent requests from httpx."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn

from nameko.runners import ServiceRunner
from nameko.testing.utils import find_free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit

APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "seed004_async"
MODULES = ("api", "rpc", "service")  # the seed's own (generic) module names
TIMEOUT = 30


@pytest.fixture
def seed_modules(rabbit_config, monkeypatch):
    """Import the example's modules fresh, as the seed names them, and put back
    whatever other modules of those names were loaded."""
    monkeypatch.setenv("AMQP_URI", rabbit_config["AMQP_URI"])
    saved = {name: sys.modules.pop(name) for name in MODULES if name in sys.modules}
    sys.path.insert(0, str(APP_DIR))
    try:
        yield {name: importlib.import_module(name) for name in MODULES}
    finally:
        sys.path.remove(str(APP_DIR))
        for name in MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@pytest.fixture
def served(seed_modules, rabbit_config):
    """console_service running, the FastAPI app under uvicorn on a free port."""
    runner = ServiceRunner(rabbit_config)
    runner.add_service(seed_modules["service"].ConsoleService)
    runner.start()
    port = find_free_port()
    server = uvicorn.Server(
        uvicorn.Config(seed_modules["api"].app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn")
    thread.start()
    try:
        wait_until(lambda: server.started, TIMEOUT, what="uvicorn serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        runner.stop()


def test_concurrent_requests_through_the_shared_async_client(served, seed_modules):
    seed_modules["service"].ConsoleService.uploads = []

    async def main():
        async with httpx.AsyncClient(base_url=served, timeout=TIMEOUT) as http:
            uploads = await asyncio.gather(
                *(http.post("/upload/", json={"name": f"file-{i}", "size": i}) for i in range(200))
            )
            root = await http.get("/")
            bad = await http.post("/upload/", json={"name": "no size"})
        return uploads, root, bad

    uploads, root, bad = asyncio.run(main())
    assert [r.status_code for r in uploads] == [200] * 200
    assert all(r.json() == {"status": True} for r in uploads)
    assert root.json() == {"message": "Hello World", "uploads": 200}
    assert bad.status_code == 422  # FastAPI's validation, before any RPC
    names = sorted(seed_modules["service"].ConsoleService.uploads)
    assert names == sorted(f"file-{i}" for i in range(200))
