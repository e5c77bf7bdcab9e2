"""ServiceContainer lifecycle, worker lifecycle, hook failures, kill/stop (SPEC 2.3-2.5)."""

from __future__ import annotations

import logging
import threading

import pytest

from nameko.containers import ServiceContainer, WorkerContext, get_container_cls
from nameko.exceptions import ConfigurationError, ContainerBeingKilled
from nameko.extensions import DependencyProvider, Entrypoint
from nameko.testing.services import dummy, entrypoint_hook, entrypoint_waiter, once
from tests.waiting import wait_until

TIMEOUT = 10


class Recorder(DependencyProvider):
    """Records every lifecycle call into a list shared by the test."""

    def __init__(self, log, fail_in=None):
        self.log = log
        self.fail_in = fail_in

    def _record(self, what):
        self.log.append(what)
        if self.fail_in == what:
            raise RuntimeError(f"{what} failed")

    def setup(self):
        self._record("setup")

    def start(self):
        self._record("start")

    def stop(self):
        self._record("stop")

    def kill(self):
        self._record("kill")

    def get_dependency(self, worker_ctx):
        self._record("get_dependency")
        return "injected"

    def worker_setup(self, worker_ctx):
        self._record("worker_setup")

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self._record(("worker_result", result, exc_info and exc_info[0].__name__))

    def worker_teardown(self, worker_ctx):
        self._record("worker_teardown")


def make_service(log, fail_in=None, expected=()):
    class Service:
        name = "recorded"
        rec = Recorder(log, fail_in)

        @dummy(expected_exceptions=expected)
        def work(self, value):
            log.append(("method", self.rec))
            if value == "raise":
                raise KeyError("boom")
            return value * 2

    return Service


@pytest.fixture
def log():
    return []


def test_service_name_is_required_and_a_string():
    class NoName:
        pass

    class BadName:
        name = 1

    with pytest.raises(ConfigurationError, match=r"must define a `name` attribute \(.*NoName\)"):
        ServiceContainer(NoName, {})
    with pytest.raises(ConfigurationError, match="must be a string"):
        ServiceContainer(BadName, {})


def test_container_lifecycle_calls_extensions(log):
    container = ServiceContainer(make_service(log), {})
    container.start()
    container.stop()
    assert log == ["setup", "start", "stop"]
    container.wait()  # returns at once: stopped cleanly


def test_worker_lifecycle_order(log):
    container = ServiceContainer(make_service(log), {})
    container.start()
    with entrypoint_hook(container, "work") as work:
        assert work(21) == 42
    assert log[2:] == [
        "get_dependency",
        "worker_setup",
        ("method", "injected"),
        ("worker_result", 42, None),
        "worker_teardown",
    ]
    container.stop()


def test_worker_error_reaches_hooks_and_caller_and_is_logged(log, caplog):
    container = ServiceContainer(make_service(log), {})
    container.start()
    with entrypoint_hook(container, "work") as work, pytest.raises(KeyError):
        work("raise")
    assert ("worker_result", None, "KeyError") in log
    record = next(r for r in caplog.records if "error handling worker" in r.getMessage())
    assert record.levelno == logging.ERROR and record.exc_info
    container.stop()


def test_expected_exception_is_logged_at_warning(log, caplog):
    container = ServiceContainer(make_service(log, expected=KeyError), {})
    container.start()
    with entrypoint_hook(container, "work") as work, pytest.raises(KeyError):
        work("raise")
    record = next(r for r in caplog.records if "error handling worker" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("(expected) error handling worker")
    container.stop()


@pytest.mark.parametrize("hook", ["get_dependency", "worker_setup"])
def test_failing_setup_hook_becomes_the_workers_error_and_container_lives(log, hook):
    container = ServiceContainer(make_service(log, fail_in=hook), {})
    container.start()
    with (
        entrypoint_hook(container, "work") as work,
        pytest.raises(RuntimeError, match=f"{hook} failed"),
    ):
        work(1)
    assert not any(isinstance(x, tuple) and x[0] == "method" for x in log)
    assert not container._died.ready()
    container.stop()


def test_failing_result_hook_is_logged_and_teardown_still_runs(log, caplog):
    container = ServiceContainer(make_service(log, fail_in=("worker_result", 2, None)), {})
    container.start()
    with entrypoint_hook(container, "work") as work:
        assert work(1) == 2
    assert log[-1] == "worker_teardown"
    assert any("failed" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert not container._died.ready()
    container.stop()


def test_worker_context_call_ids_and_parent_stack():
    class Service:
        name = "baz"

        @dummy
        def long(self):
            pass

    container = ServiceContainer(Service, {"parent_calls_tracked": 1})
    entrypoint = next(iter(container.entrypoints))
    data = {"call_id_stack": [str(i) for i in range(100)], "language": "en"}
    ctx = WorkerContext(container, None, entrypoint, data=data)
    assert "call_id_stack" not in data  # popped from the dict given, as nameko does
    assert ctx.call_id.startswith("baz.long.")
    assert ctx.call_id_stack == ["99", ctx.call_id]
    assert ctx.origin_call_id == "0" and ctx.immediate_parent_call_id == "99"
    assert ctx.context_data == {"language": "en", "call_id_stack": ["99", ctx.call_id]}
    ctx.context_data["language"] = "fr"  # a copy: changes are lost (2.14 semantics)
    assert ctx.data["language"] == "en"
    assert repr(ctx).startswith("<WorkerContext [baz.long] at 0x")


def test_worker_context_default_stack_is_tracked_plus_one():
    class Service:
        name = "s"

        @dummy
        def m(self):
            pass

    container = ServiceContainer(Service, {})
    entrypoint = next(iter(container.entrypoints))
    ctx = WorkerContext(
        container, None, entrypoint, data={"call_id_stack": [str(i) for i in range(20)]}
    )
    assert len(ctx.call_id_stack) == 11
    assert WorkerContext(container, None, entrypoint).origin_call_id is None


def test_max_workers_bounds_concurrency():
    release = threading.Event()
    running = []
    lock = threading.Lock()
    ten_running = threading.Event()

    class Service:
        name = "busy"

        @dummy
        def work(self):
            with lock:
                running.append(1)
                if len(running) == 10:
                    ten_running.set()
            release.wait(TIMEOUT)

    container = ServiceContainer(Service, {"max_workers": 10})
    container.start()
    entrypoint = next(iter(container.entrypoints))
    for _ in range(20):
        container.spawn_worker(entrypoint, (), {})
    assert ten_running.wait(TIMEOUT)
    assert container._worker_pool.running() == 10
    assert container._worker_pool.pending == 10
    release.set()
    container.stop()  # waits for all twenty
    assert len(running) == 20


def test_stop_waits_for_running_workers():
    started, release = threading.Event(), threading.Event()
    finished = []

    class Service:
        name = "slow"

        @dummy
        def work(self):
            started.set()
            release.wait(TIMEOUT)
            finished.append(True)

    container = ServiceContainer(Service, {})
    container.start()
    container.spawn_worker(next(iter(container.entrypoints)), (), {})
    assert started.wait(TIMEOUT)
    stopper = threading.Thread(target=container.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive() and not finished  # still draining
    release.set()
    stopper.join(TIMEOUT)
    assert finished == [True] and not stopper.is_alive()


def test_a_stop_during_a_slow_start_waits_for_it_then_stops_everything(log):
    """SIGTERM while a service is still starting: the stop must not run
    before the extensions it stops have started, or they would start after
    it and the process would never exit."""
    in_setup, release = threading.Event(), threading.Event()

    class SlowSetup(Recorder):
        def setup(self):
            in_setup.set()
            release.wait(TIMEOUT)
            super().setup()

    class Service:
        name = "slow_start"
        rec = SlowSetup(log)

        @dummy
        def work(self):
            pass

    container = ServiceContainer(Service, {})
    starter = threading.Thread(target=container.start)
    starter.start()
    assert in_setup.wait(TIMEOUT)
    stopper = threading.Thread(target=container.stop)
    stopper.start()
    wait_until(lambda: container.stopping, TIMEOUT)
    release.set()
    starter.join(TIMEOUT)
    stopper.join(TIMEOUT)
    assert not starter.is_alive() and not stopper.is_alive()
    assert log == ["setup", "start", "stop"]
    container.wait()  # stopped cleanly


def test_a_container_stopped_before_it_started_never_starts(log):
    container = ServiceContainer(make_service(log), {})
    container.stop()
    container.start()
    assert log == ["stop"] and not container.started


def test_kill_does_not_wait_for_workers_and_refuses_new_ones(log):
    started, release = threading.Event(), threading.Event()

    class Service:
        name = "killme"
        rec = Recorder(log)

        @dummy
        def work(self):
            started.set()
            release.wait(TIMEOUT)

    container = ServiceContainer(Service, {})
    container.start()
    entrypoint = next(iter(container.entrypoints))
    container.spawn_worker(entrypoint, (), {})
    assert started.wait(TIMEOUT)
    container.kill()
    assert "kill" in log and "stop" not in log
    with pytest.raises(ContainerBeingKilled):
        container.spawn_worker(entrypoint, (), {})
    container.wait()
    container.stop()  # no-op after death
    release.set()


def test_kill_with_exc_info_is_reraised_by_wait():
    class Service:
        name = "s"

    container = ServiceContainer(Service, {})
    container.start()
    try:
        raise ValueError("fatal")
    except ValueError as exc:
        container.kill((ValueError, exc, exc.__traceback__))
    with pytest.raises(ValueError, match="fatal"):
        container.wait()


def test_extension_errors_during_kill_are_logged(log, caplog):
    container = ServiceContainer(make_service(log, fail_in="kill"), {})
    container.start()
    container.kill()
    assert any("during kill" in r.getMessage() for r in caplog.records)


def test_managed_thread_crash_kills_the_container():
    class Crasher(Entrypoint):
        def start(self):
            self.container.spawn_managed_thread(self.explode, identifier="exploder")

        def explode(self):
            raise RuntimeError("managed thread died")

    class Service:
        name = "crashy"

        @Crasher.decorator
        def m(self):
            pass

    container = ServiceContainer(Service, {})
    container.start()
    with pytest.raises(RuntimeError, match="managed thread died"):
        container.wait()


def test_base_exception_in_worker_kills_the_container():
    class Service:
        name = "exits"

        @once
        def m(self):
            raise SystemExit(3)

    container = ServiceContainer(Service, {})
    container.start()
    with pytest.raises(SystemExit):
        container.wait()


def test_start_propagates_setup_errors(log):
    container = ServiceContainer(make_service(log, fail_in="setup"), {})
    with pytest.raises(RuntimeError, match="setup failed"):
        container.start()


def test_method_is_looked_up_on_the_worker_at_call_time(log):
    Service = make_service(log)
    container = ServiceContainer(Service, {})
    container.start()
    original = Service.work
    Service.work = lambda self, value: "patched"
    try:
        with entrypoint_hook(container, "work") as work:
            assert work(1) == "patched"
    finally:
        Service.work = original
    container.stop()


def test_entrypoint_waiter_times_out_with_message(log):
    container = ServiceContainer(make_service(log), {})
    container.start()
    with pytest.raises(
        entrypoint_waiter.Timeout, match=r"Timeout on recorded.work after 0.1 seconds"
    ):
        with entrypoint_waiter(container, "work", timeout=0.1):
            pass
    container.stop()


def test_get_container_cls_from_config():
    class Custom(ServiceContainer):
        pass

    assert get_container_cls({}) is ServiceContainer
    path = f"{__name__}.CustomContainer"
    globals()["CustomContainer"] = Custom
    assert get_container_cls({"SERVICE_CONTAINER_CLS": path}) is Custom
