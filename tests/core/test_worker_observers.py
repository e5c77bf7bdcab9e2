"""Worker observers (`nameko._runtime.observers`): the seam metrics and
traces use to see every worker of a container, sync and async."""

from __future__ import annotations

import pytest

from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder


class Watched:
    name = "watched"

    @rpc
    def ok(self, x):
        return x

    @rpc
    def boom(self):
        raise ValueError("no")

    @rpc
    async def later(self, x):
        return x * 2


class Watcher:
    def __init__(self, seen: Recorder) -> None:
        self.seen = seen

    def worker_started(self, worker_ctx):
        self.seen.add(("started", worker_ctx.entrypoint.method_name))

    def worker_finished(self, worker_ctx, result, exc_info):
        error = exc_info[0].__name__ if exc_info else None
        self.seen.add(("finished", worker_ctx.entrypoint.method_name, result, error))


class Broken:
    def worker_started(self, worker_ctx):
        raise RuntimeError("observer bug")

    def worker_finished(self, worker_ctx, result, exc_info):
        raise RuntimeError("observer bug")


def test_observers_see_every_worker_begin_and_end(config, container_factory):
    seen = Recorder()
    container = container_factory(Watched, config)
    container.worker_observers.append(Watcher(seen))
    container.start()
    with ClusterRpcProxy(config) as cluster:
        assert cluster.watched.ok(1) == 1
        with pytest.raises(RemoteError):
            cluster.watched.boom()
        assert cluster.watched.later(2) == 4
    assert seen.wait_for(6) == [
        ("started", "ok"),
        ("finished", "ok", 1, None),
        ("started", "boom"),
        ("finished", "boom", None, "ValueError"),
        ("started", "later"),
        ("finished", "later", 4, None),
    ]


def test_a_failing_observer_does_not_fail_the_worker(config, container_factory):
    container = container_factory(Watched, config)
    container.worker_observers.append(Broken())
    container.start()
    with ClusterRpcProxy(config) as cluster:
        assert cluster.watched.ok(3) == 3
