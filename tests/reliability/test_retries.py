"""Retries through the broker and dead letters, on both
brokers: ``retry=RetryPolicy(...)`` on ``@rpc``, ``@event_handler`` and
``@consume``; after the last attempt, ``dlq-<service>.<method>``."""

from __future__ import annotations

import json
import time

import pytest

from nameko._broker import connect
from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.messaging import consume
from nameko.reliability import RetryPolicy
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder

FAST = {"delay": 0.05, "jitter": 0}  # 54 ms on the delay grid


class Flaky:
    """Fails ``failures[key]`` times with ConnectionError, then works."""

    name = "flaky"
    attempts = Recorder()
    failures: dict = {}

    @rpc(retry=RetryPolicy(on=ConnectionError, attempts=3, **FAST))
    def work(self, key):
        self.attempts.add((key, time.monotonic()))
        tried = sum(1 for k, _ in self.attempts.items if k == key)
        if tried <= self.failures.get(key, 0):
            raise ConnectionError(f"attempt {tried} of {key} failed")
        return f"{key} done after {tried}"

    @rpc(retry=RetryPolicy(on=ConnectionError, attempts=3, **FAST))
    def wrong(self, key):
        self.attempts.add((key, time.monotonic()))
        raise ValueError("not worth retrying")

    @rpc(retry=RetryPolicy(on=ConnectionError, attempts=3, delay=5, jitter=0))
    def slow_retry(self, key):
        self.attempts.add((key, time.monotonic()))
        raise ConnectionError("try me again in 5 s")


@pytest.fixture
def flaky(start):
    Flaky.attempts = Recorder()
    Flaky.failures = {}
    return start(Flaky)


def test_an_rpc_retried_through_the_broker_answers_its_waiting_caller(flaky, config):
    Flaky.failures["a"] = 2
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.flaky.work("a") == "a done after 3"
    times = [t for _, t in Flaky.attempts.items]
    assert len(times) == 3
    assert all(later - earlier >= 0.045 for earlier, later in zip(times, times[1:], strict=False))


def test_a_delay_queue_deleted_behind_our_back_is_declared_again(flaky, config):
    Flaky.failures.update(a=1, b=1)
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.flaky.work("a") == "a done after 2"
        with connect(config["AMQP_URI"]) as broker:
            broker.delete_queue("nameko-retry.54ms.nameko-rpc")  # FAST's delay, back by RPC
        assert cluster.flaky.work("b") == "b done after 2"


def test_after_the_last_attempt_the_caller_gets_the_error_and_the_request_is_dead_lettered(
    flaky, config, dead_letters
):
    Flaky.failures["b"] = 99
    with ClusterRpcProxy(config, timeout=10) as cluster:
        with pytest.raises(RemoteError) as raised:
            cluster.flaky.work("b")
    assert raised.value.exc_type == "ConnectionError"
    assert "attempt 3 of b failed" in raised.value.value
    assert len(Flaky.attempts.items) == 3

    [dead] = dead_letters("dlq-flaky.work")
    assert json.loads(dead.body) == {"args": ["b"], "kwargs": {}}
    headers = dead.properties.headers
    assert headers["x-nameko-dead-reason"] == "retries-exhausted"
    assert headers["x-nameko-entrypoint"] == "flaky.work"
    assert headers["x-nameko-error-type"] == "ConnectionError"
    assert headers["x-nameko-error-path"] == "builtins.ConnectionError"
    assert "attempt 3 of b failed" in headers["x-nameko-error"]
    assert headers["x-nameko-attempt"] == 3
    assert headers["x-nameko-original-exchange"] == "nameko-rpc"
    assert headers["x-nameko-original-routing-key"] == "flaky.work"
    assert "x-death" not in headers and "nameko-delay" not in headers
    assert dead.properties.reply_to and dead.properties.correlation_id  # re-publishable


def test_an_error_the_policy_does_not_name_is_answered_at_once(flaky, config):
    with ClusterRpcProxy(config, timeout=10) as cluster:
        with pytest.raises(RemoteError) as raised:
            cluster.flaky.wrong("c")
    assert raised.value.exc_type == "ValueError"
    assert len(Flaky.attempts.items) == 1


def test_a_retry_that_would_land_after_the_callers_deadline_is_not_made(flaky, config):
    with ClusterRpcProxy(config, timeout=2) as cluster:
        began = time.monotonic()
        with pytest.raises(RemoteError) as raised:
            cluster.flaky.slow_retry("d")
    assert raised.value.exc_type == "ConnectionError"
    assert time.monotonic() - began < 1.9  # answered, not timed out
    assert len(Flaky.attempts.items) == 1


def test_an_event_handler_retries_then_dead_letters(start, config, dead_letters):
    seen = Recorder()

    class Handler:
        name = "handler"

        @event_handler("src", "thing", retry=RetryPolicy(attempts=3, **FAST))
        def handle(self, data):
            seen.add(data)
            if data == "poison":
                raise KeyError("no such thing")

    start(Handler)
    dispatch = event_dispatcher(config)
    dispatch("src", "thing", "poison")
    dispatch("src", "thing", "fine")
    [dead] = dead_letters("dlq-handler.handle")
    assert json.loads(dead.body) == "poison"
    assert dead.properties.headers["x-nameko-error-type"] == "KeyError"
    assert dead.properties.headers["x-nameko-original-exchange"] == ""
    assert dead.properties.headers["x-nameko-original-routing-key"] == (
        "evt-src-thing--handler.handle"
    )
    assert sorted(seen.wait_for(4)) == ["fine", "poison", "poison", "poison"]


def test_a_consumer_retry_succeeds(start, config):
    seen = Recorder()

    class Worker:
        name = "worker"

        @consume("jobs", retry=RetryPolicy(on=TimeoutError, attempts=4, **FAST))
        def job(self, body):
            seen.add(body)
            if len(seen.items) < 3:
                raise TimeoutError("the database is slow")

    start(Worker)
    from nameko._broker.base import Properties

    with connect(config["AMQP_URI"]) as broker:
        broker.publish("", "jobs", b'"job-1"', Properties(content_type="application/json"))
    assert seen.wait_for(3) == ["job-1"] * 3


def test_retry_takes_a_number_of_attempts_and_rejects_nonsense():
    from nameko._reliability.policy import as_retry_policy

    assert as_retry_policy(5) == RetryPolicy(attempts=5)
    assert as_retry_policy(None) is None
    with pytest.raises(TypeError):
        RetryPolicy(on="ConnectionError")
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
