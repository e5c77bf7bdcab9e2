"""Our users' documents (shared/seeds) run unchanged, on the in-memory broker.

The seed code lives in examples/ exactly as written (seed 002's Python 2
print statements excepted, see examples/seed002/rpc.py).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from pathlib import Path

import pytest

from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 10


@pytest.fixture
def seed_path(monkeypatch):
    """Import seed modules from an examples folder, as `nameko run` would."""
    added = []

    def use(folder):
        monkeypatch.syspath_prepend(str(EXAMPLES / folder))
        added.append(folder)

    before = set(sys.modules)
    yield use
    for name in set(sys.modules) - before:  # seeds reuse names like `services`
        del sys.modules[name]


def run(config, *services):
    runner = ServiceRunner(config)
    for service in services:
        runner.add_service(service)
    runner.start()
    return runner


def test_seed_000_greeting_service_with_logging_dependency(seed_path, memory_config, caplog):
    seed_path("seed000")
    from services import GreetingService

    Service2 = importlib.import_module("services.service2.service2").Service2
    runner = run(memory_config, GreetingService, Service2)
    caplog.set_level(logging.INFO)
    try:
        with ClusterRpcProxy(memory_config) as rpc_proxy:  # the seed's client code
            result = rpc_proxy.greeting_service.hello("world")
            result_async = rpc_proxy.greeting_service.hello.call_async("world async")
            assert result == "Hello, world!"
            assert result_async.result() == "Hello, world async!"
            assert rpc_proxy.service2.hello_service2("two") == "Hello, two!"
            with pytest.raises(RemoteError) as raised:
                rpc_proxy.greeting_service.raise_exception()
            assert raised.value.exc_type == "Exception"
    finally:
        runner.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert "Worker greeting_service.hello starting" in messages
    assert "Worker service2.hello_service2 completed after 0s" in messages
    assert "Worker greeting_service.raise_exception errored after 0s" in messages
    # seed 000's complaint: a service error must never go unseen
    assert any(
        r.levelno == logging.ERROR and "error handling worker" in r.getMessage() and r.exc_info
        for r in caplog.records
    )


def test_seed_002_hello_and_service_x_y(seed_path, memory_config, capsys):
    seed_path("seed002")
    from helloworld import HelloService
    from rpc import ServiceX, ServiceY

    runner = run(memory_config, HelloService, ServiceX, ServiceY)
    try:
        with ClusterRpcProxy(memory_config) as cluster_rpc:
            assert cluster_rpc.hello_service.hello(name="zq") == "hello, zq"
            output = cluster_rpc.service_x.remote_method("hello")
    finally:
        runner.stop()
    assert output == "hello-x-y"
    printed = capsys.readouterr().out
    assert "service_x rpc called" in printed and "service_y rpc called" in printed


def test_seed_001_twenty_calls_run_ten_at_a_time(memory_config):
    """Seed 001: with max_workers 10, 20 calls of a 1 s method take about 2 s
    because ten run at once. Timing lives in the benchmark; here we prove the
    concurrency: exactly ten workers run together, the rest wait."""
    running, peak = [0], [0]
    lock = threading.Lock()
    ten_in = threading.Event()
    release = threading.Event()

    class GreetingService:
        name = "greeting_service"

        @rpc
        def hello(self, name):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                if running[0] == 10:
                    ten_in.set()
            release.wait(TIMEOUT)  # stands in for the seed's sleep(5)
            with lock:
                running[0] -= 1
            return f"Hello, {name}!"

    config = dict(memory_config, max_workers=10)
    runner = run(config, GreetingService)
    try:
        with ClusterRpcProxy(config, timeout=TIMEOUT) as n_rpc:
            res = [n_rpc.greeting_service.hello.call_async(name=str(i)) for i in range(20)]
            assert ten_in.wait(TIMEOUT)
            release.set()
            assert [r.result() for r in res] == [f"Hello, {i}!" for i in range(20)]
    finally:
        runner.stop()
    assert peak[0] == 10


@pytest.fixture(params=["memory", pytest.param("rabbit", marks=pytest.mark.rabbit)])
def any_broker_config(request):
    if request.param == "memory":
        return request.getfixturevalue("memory_config")
    return {"AMQP_URI": request.getfixturevalue("rabbit_uri")}


def test_seed_004_module_level_client_shared_by_request_threads(any_broker_config):
    """Seed 004's FastAPI pattern: one `ClusterRpcProxy(config).start()` at
    import time, used by every request thread, with no pool around it."""

    class AddService:
        name = "add_service"

        @rpc
        def add(self, a, b):
            return a + b

    runner = run(any_broker_config, AddService)
    _rpc_proxy = ClusterRpcProxy(any_broker_config)  # as in the seed's rpc.py
    rpc_proxy = _rpc_proxy.start()
    answers: dict[int, int] = {}

    def request(i):
        answers[i] = rpc_proxy.add_service.add(i, 1000)

    try:
        threads = [threading.Thread(target=request, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
    finally:
        _rpc_proxy.stop()
        runner.stop()
    assert answers == {i: i + 1000 for i in range(64)}
