"""Our users' documents (shared/seeds) run unchanged, on the in-memory broker.

The seed code lives in examples/ exactly as written (seed 002's Python 2
print statements excepted, see examples/seed002/rpc.py; seed 003's code blocks,
which lost their line breaks when scraped, are re-flowed, not rewritten).
Seed 003's own pytest modules are run as their user would run them, with
pytest in a subprocess against RabbitMQ.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import runpy
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nameko.containers import ServiceContainer
from nameko.exceptions import RemoteError
from nameko.rpc import RpcProxy, rpc
from nameko.runners import ServiceRunner
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy
from nameko.testing._vhosts import AMQP_HOST
from nameko.testing.services import entrypoint_waiter, replace_dependencies
from nameko.testing.utils import get_container
from nameko.utils import REDACTED, get_redacted_args

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


# -- seed 003: the nameko tutorial (examples/seed003/README.md) ---------------

SEED_003_TESTS = 7  # conversion 1, integration 1, shop 1, languages 3, event interface 1


@pytest.mark.rabbit
def test_seed_003_pytest_modules_pass_as_their_user_runs_them():
    """`pytest` in examples/seed003, alone: its own rootdir, no ini file and
    no conftest of ours; only the installed plugin (rabbit_config,
    container_factory, runner_factory)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-c", os.devnull, "--rootdir", ".", "--confcutdir", "."]
    command += ["-W", "error::pytest.PytestUnraisableExceptionWarning"]
    command += ["-W", "error::pytest.PytestUnhandledThreadExceptionWarning"]
    command += ["--amqp-uri", f"{AMQP_HOST}/"]
    done = subprocess.run(
        command, cwd=EXAMPLES / "seed003", capture_output=True, text=True, timeout=120
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.search(r"\b(\d+) passed\b", summary)
    assert passed and int(passed.group(1)) == SEED_003_TESTS, summary
    assert not re.search(r"failed|error|skipped|deselected", summary), summary


def test_seed_003_hello_world(seed_path, memory_config):
    seed_path("seed003")
    from helloworld import GreetingService

    runner = run(memory_config, GreetingService)
    try:
        with ClusterRpcProxy(memory_config) as n_rpc:  # `n.rpc` of `nameko shell`
            assert n_rpc.greeting_service.hello(name="hello") == "Hello, hello!"
    finally:
        runner.stop()


def test_seed_003_container_and_runner_start_and_stop_with_empty_config(seed_path):
    """config={} has no AMQP_URI: services without entrypoints must not need one
    (any broker connection would raise ConfigurationError)."""
    seed_path("seed003")
    threads_before = set(threading.enumerate())
    container_example = importlib.import_module("service_container")  # runs at import
    runner_example = importlib.import_module("service_runner")

    assert container_example.service_extensions == []
    assert not container_example.container.started
    assert container_example.container._died.ready()
    runner = runner_example.runner
    assert runner_example.container_a.service_name == "service_a"
    assert sorted(runner.service_names) == ["service_a", "service_b"]
    assert all(c._died.ready() and not c.started for c in runner.containers)
    assert set(threading.enumerate()) <= threads_before


def test_seed_003_rpc_x_y_and_the_cluster_proxy_snippets(seed_path, memory_config):
    seed_path("seed003")
    from rpc import ServiceX, ServiceY

    runner = run(memory_config, ServiceX, ServiceY)
    try:
        # the snippets verbatim; `AMQP_URI` is the reader's to supply
        snippets = runpy.run_path(
            str(EXAMPLES / "seed003" / "rpc_client.py"), {"AMQP_URI": memory_config["AMQP_URI"]}
        )
        assert snippets["hello_res"].result() == "hello-x-y"
        assert snippets["world_res"].result() == "world-x-y"
        with ClusterRpcProxy(snippets["config"]) as cluster_rpc:
            assert cluster_rpc.service_x.remote_method("hellø") == "hellø-x-y"
            reply = cluster_rpc.service_x.remote_method.call_async("hellø")
            assert reply.result() == "hellø-x-y"
    finally:
        runner.stop()


def test_seed_003_events_service_b_receives_what_service_a_dispatches(
    seed_path, memory_config, capsys
):
    seed_path("seed003")
    from events import ServiceA, ServiceB

    runner = run(memory_config, ServiceA, ServiceB)
    try:
        with entrypoint_waiter(get_container(runner, ServiceB), "handle_event", timeout=TIMEOUT):
            with ClusterRpcProxy(memory_config) as cluster_rpc:
                assert cluster_rpc.service_a.dispatching_method("payløad") is None
    finally:
        runner.stop()
    assert "service b received: payløad" in capsys.readouterr().out


def test_seed_003_broadcast_reaches_every_listener(seed_path, memory_config, capsys):
    seed_path("seed003")
    from broadcast import ListenerService

    runners = [run(memory_config, ListenerService) for _ in range(2)]  # two instances
    containers = [get_container(runner, ListenerService) for runner in runners]
    try:
        with entrypoint_waiter(containers[0], "ping", timeout=TIMEOUT):
            with entrypoint_waiter(containers[1], "ping", timeout=TIMEOUT):
                event_dispatcher(memory_config)("monitor", "ping", "ping?")
    finally:
        for runner in runners:
            runner.stop()
    assert capsys.readouterr().out.count("pong from listener") == 2


def test_seed_003_timer_fires(seed_path, memory_config, capsys):
    seed_path("seed003")
    from timer import Service

    runner = ServiceRunner(memory_config)
    runner.add_service(Service)
    try:
        with entrypoint_waiter(get_container(runner, Service), "ping", timeout=TIMEOUT):
            runner.start()
    finally:
        runner.stop()
    assert "pong" in capsys.readouterr().out


def test_seed_003_redacted_args_documented_outputs():
    """The seed's get_redacted_args lines use an undefined `entrypoint`
    decorator on plain functions, so they cannot run; here are its two
    examples with `rpc` on a service. Its REDACTED has 6 asterisks, nameko's 8."""

    class Service:
        name = "service"

        @rpc(sensitive_arguments="foo.a")  # by dictionary key
        def by_key(self, foo):
            pass

        @rpc(sensitive_arguments="foo.a[1]")  # list index
        def by_index(self, foo):
            pass

    container = ServiceContainer(Service, {})  # extensions hold it weakly
    entrypoints = {ep.method_name: ep for ep in container.entrypoints}
    by_key, by_index = entrypoints["by_key"], entrypoints["by_index"]
    assert get_redacted_args(by_key, foo={"a": 1, "b": 2}) == {"foo": {"a": REDACTED, "b": 2}}
    # the documented output is that of foo={'a': [1, 2, 3]}...
    assert get_redacted_args(by_index, foo={"a": [1, 2, 3]}) == {"foo": {"a": [1, REDACTED, 3]}}
    # ...the seed's own list input has no key `a`: nameko redacts nothing
    assert get_redacted_args(by_index, foo=[{"a": [1, 2, 3]}]) == {"foo": [{"a": [1, 2, 3]}]}


def test_seed_003_replace_dependencies_usage(container_factory, memory_config):
    """The seed's replace_dependencies snippets use `config`, `ServiceContainer`
    and `replace_dependencies` without defining them; here they are, bound."""

    class ConversionService:
        name = "conversions"

        maths_rpc = RpcProxy("maths")

        @rpc
        def cm_to_inches(self, cms):
            return self.maths_rpc.divide(cms, 2.54)

    class StubMaths:
        def divide(self, val1, val2):
            return val1 / val2

    container = container_factory(ConversionService, memory_config)
    mock_maths_rpc = replace_dependencies(container, "maths_rpc")
    mock_maths_rpc.divide.return_value = 39.37
    container.start()
    with ServiceRpcProxy("conversions", memory_config) as proxy:
        assert proxy.cm_to_inches(100) == 39.37
    mock_maths_rpc.divide.assert_called_once_with(100, 2.54)
    container.stop()

    container = container_factory(ConversionService, memory_config)  # a started one is refused
    replace_dependencies(container, maths_rpc=StubMaths())
    container.start()
    with ServiceRpcProxy("conversions", memory_config) as proxy:
        assert proxy.cm_to_inches(127) == 50.0
