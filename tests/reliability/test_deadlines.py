"""Deadlines between services, on both brokers.

A call with a timeout carries its deadline (``nameko.call_deadline`` and the
AMQP expiration); a request whose caller has given up is never started; a
handler can read its budget; nested calls inherit what is left of it.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from nameko._protocol.deadlines import encode_deadline
from nameko.exceptions import DeadlineExceeded, RpcTimeout
from nameko.reliability import Deadline
from nameko.rpc import RpcProxy, ServiceRpc, rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.raw_rpc import raw_rpc_request

WAIT = 10


class Budgeted:
    name = "budgeted"
    deadline = Deadline()

    @rpc
    def remaining(self):
        return self.deadline.remaining()


class Outer:
    name = "outer"
    inherit = RpcProxy("budgeted")
    shorter = RpcProxy("budgeted", timeout=0.5)
    nameko3 = ServiceRpc("budgeted")
    deadline = Deadline()

    @rpc
    def nested(self, how):
        mine = self.deadline.remaining()
        theirs = getattr(self, how).remaining()
        return [mine, theirs]

    @rpc
    async def nested_async(self):
        return [self.deadline.remaining(), await self.inherit.remaining()]


def test_a_handler_reads_its_callers_budget(start, config):
    start(Budgeted)
    with ClusterRpcProxy(config, timeout=5) as cluster:
        left = cluster.budgeted.remaining()
    assert 0 < left <= 5
    with ClusterRpcProxy(config) as cluster:
        assert cluster.budgeted.remaining() is None  # no timeout: no deadline


@pytest.mark.parametrize("how", ["inherit", "nameko3"])
def test_nested_calls_inherit_what_is_left(start, config, how):
    start(Budgeted)
    start(Outer)
    with ClusterRpcProxy(config, timeout=5) as cluster:
        mine, theirs = cluster.outer.nested(how)
    assert 0 < theirs <= mine <= 5


def test_a_shorter_timeout_of_its_own_wins(start, config):
    start(Budgeted)
    start(Outer)
    with ClusterRpcProxy(config, timeout=5) as cluster:
        mine, theirs = cluster.outer.nested("shorter")
    assert 0 < theirs <= 0.5 < mine


def test_async_workers_inherit_too(start, config):
    start(Budgeted)
    start(Outer)
    with ClusterRpcProxy(config, timeout=5) as cluster:
        mine, theirs = cluster.outer.nested_async()
    assert 0 < theirs <= mine <= 5


def test_without_a_timeout_nested_calls_have_no_deadline(start, config):
    start(Budgeted)
    start(Outer)
    with ClusterRpcProxy(config) as cluster:
        assert cluster.outer.nested("inherit") == [None, None]


def test_a_nested_call_with_no_budget_left_fails_at_once(start, config):
    outcome: list = []
    done = threading.Event()

    class Late:
        name = "late"
        other = RpcProxy("budgeted")
        deadline = Deadline()

        @rpc
        def call_too_late(self):
            threading.Event().wait(self.deadline.remaining() + 0.05)  # let the budget run out
            began = time.monotonic()
            try:
                self.other.remaining()
            except Exception as exc:
                outcome.append((type(exc), time.monotonic() - began))
            done.set()

    start(Budgeted)
    start(Late)
    with ClusterRpcProxy(config, timeout=0.3) as cluster:
        with pytest.raises(RpcTimeout):
            cluster.late.call_too_late()
    assert done.wait(WAIT)
    [(kind, took)] = outcome
    assert kind is DeadlineExceeded
    assert took < 0.1  # nothing was published nor waited for


def test_a_request_reaching_a_worker_after_its_deadline_is_answered_not_run(start, config):
    ran = []

    class Recorder:
        name = "recorder"

        @rpc
        def record(self):
            ran.append(1)

    start(Recorder)
    past = {"nameko.call_deadline": encode_deadline(time.time() - 1)}
    reply = raw_rpc_request(
        config["AMQP_URI"],
        "recorder.record",
        json.dumps({"args": [], "kwargs": {}}).encode(),
        headers=past,
    )
    assert reply["error"]["exc_type"] == "DeadlineExceeded"
    assert reply["error"]["exc_path"] == "nameko.exceptions.DeadlineExceeded"
    assert ran == []


def test_a_saturated_service_never_runs_the_requests_its_callers_gave_up(start, config):
    release, busy, ran = threading.Event(), threading.Event(), []

    class Saturated:
        name = "saturated"

        @rpc
        def hold(self):
            busy.set()
            release.wait(WAIT)

        @rpc
        def record(self, n):
            ran.append(n)
            return n

    start(Saturated, max_workers=1)
    with ClusterRpcProxy(config) as blocker, ClusterRpcProxy(config, timeout=0.3) as impatient:
        blocker.saturated.hold.call_async()
        assert busy.wait(WAIT)
        calls = [impatient.saturated.record.call_async(n) for n in range(20)]
        for call in calls:
            with pytest.raises(RpcTimeout):
                call.result()
        release.set()
        with ClusterRpcProxy(config) as patient:
            assert patient.saturated.record("last") == "last"  # behind all the others
    assert ran == ["last"]
