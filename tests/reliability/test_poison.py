"""Poison messages, on both brokers: a message that kills
its worker again and again is counted across redeliveries and dead-lettered
after ``DELIVERY_LIMIT`` deliveries instead of looping for ever.

A container kill stands in for a process death here: both give the
unacked message back to the broker, which redelivers it flagged
"redelivered" (tests/integration/test_poison_process.py kills real
processes)."""

from __future__ import annotations

import json
import threading

import pytest

from nameko._broker import connect
from nameko._broker.base import Properties
from nameko.exceptions import DeliveryLimitExceeded
from nameko.messaging import consume
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder

WAIT = 10


def _doomed(started: Recorder, hold: threading.Event) -> type:
    class Doomed:
        name = "doomed"

        @consume("doomed-jobs")
        def job(self, body):
            started.add(body)
            hold.wait(WAIT)  # until the test kills this container

        @rpc
        def call(self, n):
            started.add(n)
            hold.wait(WAIT)

    return Doomed


def _run(container_factory, config, service, queue_type="classic"):
    container = container_factory(
        service, {**config, "DELIVERY_LIMIT": 2, "QUEUE_TYPE": queue_type}
    )
    container.start()
    return container


def test_a_message_that_kills_its_worker_every_time_is_dead_lettered(
    config, container_factory, dead_letters
):
    started, hold = Recorder(), threading.Event()
    service = _doomed(started, hold)
    try:
        with connect(config["AMQP_URI"]) as broker:
            from nameko._broker.base import Queue

            broker.declare([Queue("doomed-jobs")])
            broker.publish("", "doomed-jobs", b'"job"', Properties(content_type="application/json"))
        for run in (1, 2):
            container = _run(container_factory, config, service)
            started.wait_for(run)
            container.kill()
        _run(container_factory, config, service)  # the third delivery: over the limit
        [dead] = dead_letters("dlq-doomed.job")
    finally:
        hold.set()
    assert json.loads(dead.body) == "job"
    headers = dead.properties.headers
    assert headers["x-nameko-dead-reason"] == "delivery-limit"
    assert headers["x-nameko-error-type"] == "DeliveryLimitExceeded"
    assert "delivered 3 times" in headers["x-nameko-error"]
    assert started.items == ["job", "job"]  # never run a third time


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_a_waiting_caller_is_told_its_request_was_dead_lettered(
    config, container_factory, dead_letters, queue_type
):
    """On a quorum queue the broker's own ``x-delivery-count`` is used."""
    started, hold = Recorder(), threading.Event()
    service = _doomed(started, hold)
    try:
        with ClusterRpcProxy(config, timeout=WAIT * 3) as cluster:
            container = _run(container_factory, config, service, queue_type)
            reply = cluster.doomed.call.call_async(7)
            for run in (1, 2):
                started.wait_for(run)
                container.kill()
                container = _run(container_factory, config, service, queue_type)
            with pytest.raises(DeliveryLimitExceeded):
                reply.result()
        [dead] = dead_letters("dlq-doomed.call")
    finally:
        hold.set()
    assert json.loads(dead.body) == {"args": [7], "kwargs": {}}
    assert started.items == [7, 7]  # not run a third time


def test_no_limit_when_the_config_says_so(config, container_factory):
    from nameko._reliability.entrypoint import delivery_limit
    from nameko.exceptions import ConfigurationError

    assert delivery_limit({}) == 10
    assert delivery_limit({"DELIVERY_LIMIT": None}) is None
    assert delivery_limit({"DELIVERY_LIMIT": 0}) is None
    with pytest.raises(ConfigurationError):
        delivery_limit({"DELIVERY_LIMIT": "lots"})
