"""Several brokers in ``AMQP_URI``: nodes are tried in turn.

Here the "nodes" are the shared broker under two addresses (127.0.0.1 and
localhost) and a port nobody listens on; a real three-node cluster losing
nodes is test_cluster.py.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest

from nameko._broker import connect
from nameko._broker.base import BrokerUnreachable, Properties, Queue
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import find_free_port
from tests.contract.conftest import Collector
from tests.core.test_queue_types import rpc_service
from tests.rabbit_admin import close_connection
from tests.waiting import wait_until

TIMEOUT = 20


def node(rabbit_uri: str, host: str, port: int) -> str:
    parts = urlsplit(rabbit_uri)
    return parts._replace(netloc=f"guest:guest@{host}:{port}").geturl()


def test_a_node_that_does_not_answer_is_skipped(rabbit_uri, caplog) -> None:
    dead = node(rabbit_uri, "127.0.0.1", find_free_port("127.0.0.1"))
    caplog.set_level(logging.WARNING)
    broker = connect([dead, rabbit_uri])
    try:
        assert broker.is_connected
    finally:
        broker.close()
    assert "trying amqp://guest:********@127.0.0.1:5672/" in caplog.text
    assert "guest:guest" not in caplog.text


def test_a_lost_connection_moves_on_to_the_next_node(rabbit_uri, rabbit_vhost) -> None:
    other = node(rabbit_uri, "localhost", 5672)
    broker = connect(f"{rabbit_uri};{other}", connection_name="failover-test")
    reconnected = []
    broker.add_reconnect_listener(lambda: reconnected.append(broker._params.host))
    try:
        broker.declare([Queue("q")])
        collector = Collector(ack=True)
        broker.consume("q", collector, topology=[Queue("q")])
        close_connection("failover-test", rabbit_vhost)
        wait_until(lambda: reconnected, TIMEOUT)
        assert reconnected == ["localhost"]
        broker.publish("", "q", b"after", Properties())
        assert collector.wait_for(1)[0].body == b"after"  # the consumer was restored
    finally:
        broker.close()


def test_every_node_is_named_when_none_answers(rabbit_uri) -> None:
    dead = [node(rabbit_uri, "127.0.0.1", find_free_port("127.0.0.1")) for _ in range(2)]
    options = {"max_retries": 1, "interval_start": 0, "interval_step": 0}
    with pytest.raises(BrokerUnreachable) as info:
        connect(dead, transport_options=options)
    message = str(info.value)
    assert all(urlsplit(d).netloc.split("@")[1] in message for d in dead), message
    assert "guest:guest" not in message


def test_services_and_clients_take_a_list_in_their_config(rabbit_uri, container_factory) -> None:
    """The config form (a YAML list): containers, clients and dispatchers."""
    dead = node(rabbit_uri, "127.0.0.1", find_free_port("127.0.0.1"))
    config = {"AMQP_URI": [dead, rabbit_uri]}
    container_factory(rpc_service("svc"), config).start()
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        assert proxy.svc.echo("hi") == "hi"
