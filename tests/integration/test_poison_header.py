"""A message no consumer can decode, on the real RabbitMQ and `nameko run`:
an RPC request whose headers nest 400 tables deep, published by an
independent client (py-amqp), is rejected without requeue, dead-lettered by
the queue's policy and logged once, while the service keeps its connection
and its consumer and answers the next call at once. (Before, the decoder's
``RecursionError`` dropped the connection, the broker redelivered the
request, and the queue had no consumer for as long as it stayed there.)"""

from __future__ import annotations

import json
import logging
import re
import sys
from urllib.parse import unquote, urlsplit

import amqp
import pytest
import yaml

from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, Properties, Queue
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing._vhosts import rabbitmqctl
from tests.core.helpers import Recorder
from tests.integration.conftest import NamekoProcess, wait_until_serving
from tests.rabbit_admin import connection_pids, queue_counts
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit
LOGGER = "nameko._broker.rabbit"

SERVICE = """\
from nameko.rpc import rpc


class Poisoned:
    name = "poisoned"

    @rpc
    def ping(self):
        return "pong"
"""
QUEUE = "rpc-poisoned"
DEPTH = 400
LOGGED = "undecodable message on queue 'rpc-poisoned'"


def nested(levels: int) -> dict:
    headers: dict = {}
    inner = headers
    for _ in range(levels - 1):
        inner["k"] = inner = {}
    return headers


def consumers(vhost: str, queue: str) -> int:
    """The broker's consumers of ``queue`` (list_queues counts none for quorum queues)."""
    out = rabbitmqctl("list_consumers", "-p", vhost, "--no-table-headers", "queue_name")
    return sum(line.strip() == queue for line in out.splitlines())


def raw_channel(uri: str) -> tuple[amqp.Connection, amqp.Channel]:
    """A py-amqp connection: an independent encoder puts the table on the wire."""
    parts = urlsplit(uri)
    conn = amqp.Connection(
        f"{parts.hostname}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=unquote(parts.path[1:]),
    )
    conn.connect()
    return conn, conn.channel()


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_a_request_with_headers_too_deep_to_decode_is_dead_lettered_and_the_queue_keeps_serving(
    tmp_path, rabbit_uri, rabbit_vhost, queue_type
):
    # an operator's dead-letter policy on the service's queue
    conn, channel = raw_channel(rabbit_uri)
    channel.exchange_declare("poison-dlx", "fanout", durable=True, auto_delete=False)
    channel.queue_declare("poison-dlq", durable=True, auto_delete=False)
    channel.queue_bind("poison-dlq", "poison-dlx")
    policy = json.dumps({"dead-letter-exchange": "poison-dlx"})
    rabbitmqctl(
        "set_policy", "-p", rabbit_vhost, "dlx", f"^{QUEUE}$", policy, "--apply-to", "queues"
    )

    (tmp_path / "poisoned.py").write_text(SERVICE)
    config = {"AMQP_URI": rabbit_uri, "QUEUE_TYPE": queue_type}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = NamekoProcess(tmp_path, ["--config", "config.yaml", "poisoned"], tmp_path / "log")
    try:
        wait_until_serving(config, "poisoned")
        [service_connection] = connection_pids("nameko:poisoned", rabbit_vhost)

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20 * DEPTH))  # py-amqp's encoder recurses too
        try:
            message = amqp.Message(
                b'{"args": [], "kwargs": {}}',
                content_type="application/json",
                content_encoding="utf-8",
                reply_to="nowhere",
                correlation_id="poison-1",
                application_headers=nested(DEPTH),
            )
            channel.basic_publish(message, exchange="nameko-rpc", routing_key="poisoned.ping")
        finally:
            sys.setrecursionlimit(limit)

        wait_until(lambda: LOGGED in proc.output(), timeout=15, what="the rejection is logged")
        with ClusterRpcProxy(config, timeout=5) as cluster:
            assert cluster.poisoned.ping() == "pong"
        wait_until(lambda: queue_counts(rabbit_vhost, "poison-dlq") == (1, 0), timeout=10)
        assert queue_counts(rabbit_vhost, QUEUE) == (0, 0)  # rejected, not requeued
        assert consumers(rabbit_vhost, QUEUE) == 1
        assert connection_pids("nameko:poisoned", rabbit_vhost) == [service_connection]
    finally:
        proc.close()
        conn.close()

    output = proc.output()
    [line] = [line for line in output.splitlines() if "undecodable message" in line]
    assert re.search(r"delivery tag \d+, exchange 'nameko-rpc', routing key 'poisoned.ping'", line)
    assert "nested deeper than 64 levels" in line and "rejected without requeue" in line
    assert "reconnecting" not in output and "lost" not in output


def _publish_poison(channel: amqp.Channel, exchange: str) -> None:
    """What any client may send that no decoder of ours accepts: a deep
    table, routing keys and property strings that are not UTF-8."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20 * DEPTH))
    try:
        deep = amqp.Message(b"deep", application_headers=nested(DEPTH))
        channel.basic_publish(deep, exchange=exchange, routing_key="work.deep")
    finally:
        sys.setrecursionlimit(limit)
    channel.basic_publish(amqp.Message(b"key"), exchange=exchange, routing_key=b"work.\xff\xfe")
    bad_id = amqp.Message(b"id", correlation_id=b"\xc3\x28")
    channel.basic_publish(bad_id, exchange=exchange, routing_key="work.id")
    channel.basic_publish(amqp.Message(b"fine"), exchange=exchange, routing_key="work.fine")


@pytest.mark.parametrize("mode", ["ack", "ack_on_return", "no_ack"])
def test_undecodable_deliveries_are_rejected_and_the_consumer_goes_on(
    rabbit_uri, rabbit_vhost, caplog, mode
):
    topology = [
        Exchange("work", "topic", durable=False),
        Exchange("dead", "fanout", durable=False),
        Queue("dead", durable=False),
        Binding("dead", "dead"),
        Queue("victim", durable=False, arguments={"x-dead-letter-exchange": "dead"}),
        Binding("victim", "work", "work.*"),
    ]
    received = Recorder()

    def on_message(delivery):
        received.add(delivery)
        if mode == "ack":
            delivery.ack()

    conn, channel = raw_channel(rabbit_uri)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with connect(rabbit_uri) as broker:
        options = {"no_ack": mode == "no_ack", "ack_on_return": mode == "ack_on_return"}
        broker.consume("victim", on_message, topology=topology, **options)
        try:
            _publish_poison(channel, "work")
        finally:
            conn.close()
        [fine] = received.wait_for(1)
        assert fine.body == b"fine" and fine.routing_key == "work.fine"
        broker.publish("work", "work.after", b"after", Properties())  # still consuming
        assert [d.body for d in received.wait_for(2)] == [b"fine", b"after"]
        assert (broker.stats.undecodable, broker.stats.reconnects) == (3, 0)
        wait_until(lambda: queue_counts(rabbit_vhost, "victim") == (0, 0), timeout=10)
        dead = 0 if mode == "no_ack" else 3  # a no_ack delivery is settled already
        wait_until(lambda: queue_counts(rabbit_vhost, "dead") == (dead, 0), timeout=10)

    lines = [r.getMessage() for r in caplog.records if "undecodable message" in r.getMessage()]
    assert len(lines) == 3
    deep, key, bad_id = lines
    assert "routing key 'work.deep'" in deep and "nested deeper than 64 levels" in deep
    assert "routing key ''" in key and "not UTF-8" in key
    assert (
        "routing key 'work.id'" in bad_id and "correlation_id: a string that is not UTF-8" in bad_id
    )
    outcome = "dropped" if mode == "no_ack" else "rejected without requeue"
    assert all(outcome in line and "queue 'victim'" in line for line in lines)
    assert not [r for r in caplog.records if "lost" in r.getMessage()]
