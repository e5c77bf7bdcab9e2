"""Jobs longer than RabbitMQ's ``consumer_timeout`` run once.

RabbitMQ closes a channel whose delivery stayed unacked longer than its
``consumer_timeout`` (30 minutes by default) and requeues the message. The
node here has a timeout of 1 s, checked every 0.5 s (``channel_tick_interval``,
60 s by default, is how often 3.10 looks), so a 5 s job sees its channel
closed two or three times: each redelivered copy comes back to the service
while the job still runs, and must neither run again nor count as a
delivery (``DELIVERY_LIMIT: 2`` would dead-letter it on the third).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nameko._broker import connect
from nameko._broker.base import NotFound
from nameko._messaging.pool import close_idle
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import NamekoProcess, start_nameko, wait_until_serving
from tests.integration.throwaway_broker import ThrowawayRabbit
from tests.waiting import wait_until

JOB = 5  # seconds: several consumer timeouts
TIMEOUT = 30


@pytest.fixture(scope="module")
def short_timeout_rabbit() -> Iterator[ThrowawayRabbit]:
    node = ThrowawayRabbit(advanced="{consumer_timeout, 1000}, {channel_tick_interval, 500}")
    try:
        node.start()
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def service(short_timeout_rabbit, tmp_path_factory) -> Iterator[tuple[dict, NamekoProcess]]:
    config = {"AMQP_URI": short_timeout_rabbit.uri(), "DELIVERY_LIMIT": 2}
    proc = start_nameko(
        tmp_path_factory.mktemp("long-jobs"),
        ["long_job_service:LongJobService"],
        ["long_job_service.py"],
        config,
    )
    try:
        wait_until_serving(config, "long_job", "runs", timeout=TIMEOUT)
        yield config, proc
    finally:
        proc.close()
        close_idle(config["AMQP_URI"])


def _queue_size(config: dict, queue: str) -> int:
    with connect(config["AMQP_URI"]) as broker:
        try:
            return broker.queue_size(queue)
        except NotFound:
            return 0


def test_long_jobs_run_once_answer_and_are_not_dead_lettered(service) -> None:
    config, proc = service
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc:
        with event_dispatcher(config) as dispatch:
            dispatch("long_job_source", "job", {"seconds": JOB, "tag": "event"})
        assert rpc.long_job.crunch(JOB, "rpc") == "rpc done"
        wait_until(lambda: rpc.long_job.runs("event")[1] == 1, TIMEOUT)
        assert rpc.long_job.runs("rpc") == [1, 1]
        assert rpc.long_job.runs("event") == [1, 1]
    # a graceful stop gives back whatever is unacked: nothing is
    proc.signal()
    assert proc.wait(TIMEOUT) == 0
    assert _queue_size(config, "rpc-long_job") == 0
    assert _queue_size(config, "evt-long_job_source-job--long_job.on_job") == 0
    assert _queue_size(config, "dlq-long_job.crunch") == 0
    assert _queue_size(config, "dlq-long_job.on_job") == 0

    output = proc.output()
    closes = [line for line in output.splitlines() if "closed by the broker: 406" in line]
    assert closes, output  # the broker did close the jobs' channels
    for line in closes:
        assert "delivery acknowledgement on channel" in line, line
        assert "consumer_timeout" in line and "docs/operations.md" in line, line
    assert "is still running: not run again" in output, output
    # only channels closed: no word of a lost connection, nor of a second run
    assert "Connection to broker" not in output, output
    assert "may run a second time" not in output and "may run twice" not in output, output
