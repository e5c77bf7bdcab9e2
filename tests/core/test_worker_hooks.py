"""The container's per-worker hooks under nameko's names: instrumentation
(opentelemetry-instrumentation-nameko) wraps ``ServiceContainer._worker_setup``
and ``_worker_result`` on the class and expects them at nameko's moments,
for sync and ``async def`` workers alike."""

from __future__ import annotations

import pytest
import wrapt

from nameko.containers import ServiceContainer
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder

SEEN = Recorder()


class Tracked(DependencyProvider):
    def get_dependency(self, worker_ctx):
        SEEN.add(("inject", worker_ctx.entrypoint.method_name))
        return lambda: SEEN.add(("method", worker_ctx.entrypoint.method_name))

    def worker_setup(self, worker_ctx):
        SEEN.add(("provider setup", worker_ctx.entrypoint.method_name))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        SEEN.add(("provider result", worker_ctx.entrypoint.method_name))

    def worker_teardown(self, worker_ctx):
        SEEN.add(("provider teardown", worker_ctx.entrypoint.method_name))


class Hooked:
    name = "hooked"

    tracked = Tracked()

    @rpc
    def sync(self):
        self.tracked()
        return "s"

    @rpc
    async def coro(self):
        self.tracked()
        return "c"

    @rpc
    def fails(self):
        self.tracked()
        raise ValueError("no")


@pytest.fixture
def wrapped_hooks():
    """Wrap the hooks on the class the way instrumentation does (wrapt)."""

    def setup(wrapped, instance, args, kwargs):
        (worker_ctx,) = args
        SEEN.add(("wrapped setup", worker_ctx.entrypoint.method_name))
        return wrapped(*args, **kwargs)

    def result(wrapped, instance, args, kwargs):
        worker_ctx, result, exc_info = args
        error = exc_info[0].__name__ if exc_info else None
        SEEN.add(("wrapped result", worker_ctx.entrypoint.method_name, result, error))
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper("nameko.containers", "ServiceContainer._worker_setup", setup)
    wrapt.wrap_function_wrapper("nameko.containers", "ServiceContainer._worker_result", result)
    SEEN.items.clear()
    yield SEEN
    for name in ("_worker_setup", "_worker_result"):
        setattr(ServiceContainer, name, vars(ServiceContainer)[name].__wrapped__)


@pytest.mark.parametrize(("method", "value"), [("sync", "s"), ("coro", "c")])
def test_wrapped_hooks_run_at_nameko_moments(config, start, wrapped_hooks, method, value):
    start(Hooked)
    with ClusterRpcProxy(config) as cluster:
        assert getattr(cluster.hooked, method)() == value
    assert wrapped_hooks.wait_for(7) == [
        ("inject", method),
        ("wrapped setup", method),
        ("provider setup", method),
        ("method", method),
        ("wrapped result", method, value, None),  # after the reply was handled
        ("provider result", method),
        ("provider teardown", method),
    ]


def test_a_failed_worker_reaches_the_wrapped_result_hook(config, start, wrapped_hooks):
    start(Hooked)
    with ClusterRpcProxy(config) as cluster, pytest.raises(RemoteError):
        cluster.hooked.fails()
    assert ("wrapped result", "fails", None, "ValueError") in wrapped_hooks.wait_for(7)


def test_the_worker_pool_counts_like_a_green_pool(config, start):
    """``running()`` and ``free()`` (methods, as on eventlet's GreenPool):
    instrumentation puts them on every span."""
    counts = Recorder()

    class Counting:
        name = "counting"

        @rpc
        def count(self):
            pool = container._worker_pool
            counts.add((pool.running(), pool.free()))

    container = start(Counting, max_workers=4)
    with ClusterRpcProxy(config) as cluster:
        cluster.counting.count()
    assert counts.wait_for(1) == [(1, 3)]
