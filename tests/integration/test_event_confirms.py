"""The events guarantee on RabbitMQ: pipelined dispatches are all
confirmed before the worker's reply; a broker nack fails the call; when the
publishing connection drops mid-way, a call that succeeds has had every one
of its events delivered."""

from __future__ import annotations

import threading

import pytest

from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, Queue
from nameko.events import EventDispatcher, event_handler
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder
from tests.rabbit_admin import close_connection
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit

TIMEOUT = 30
GATES: dict[str, threading.Event] = {}


class Source:
    name = "source"
    dispatch = EventDispatcher()

    @rpc
    def emit(self, count, tag="t"):
        for n in range(count):
            self.dispatch("thing", [tag, n])
        return count

    @rpc
    def emit_until(self, gate, tag):
        """Dispatch until the test opens ``gate``; the count dispatched."""
        n = 0
        while not GATES[gate].is_set() and n < 200_000:
            self.dispatch("thing", [tag, n])
            n += 1
        return n


def sink(recorder):
    class Sink:
        name = "sink"

        @event_handler("source", "thing")
        def handle(self, data):
            recorder.add(tuple(data))

    return Sink


@pytest.fixture
def running(container_factory, rabbit_config):
    seen = Recorder()
    for service in (sink(seen), Source):
        container_factory(service, rabbit_config).start()
    return seen


def test_many_pipelined_events_are_all_delivered(running, rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=TIMEOUT) as proxy:
        assert proxy.source.emit(2000) == 2000
    assert sorted(n for _, n in running.wait_for(2000)) == list(range(2000))


def test_a_nacked_event_fails_the_call(running, rabbit_config):
    with connect(rabbit_config["AMQP_URI"]) as broker:
        broker.declare(
            [
                Exchange("source.events"),
                Queue("refuse", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}),
                Binding("refuse", "source.events", "thing"),
            ]
        )
    with ClusterRpcProxy(rabbit_config, timeout=TIMEOUT) as proxy:
        with pytest.raises(RemoteError) as caught:
            proxy.source.emit(3)
    assert caught.value.exc_type == "PublishNacked"


def test_a_call_that_succeeds_across_a_dropped_connection_lost_no_event(running, rabbit_config):
    vhost = rabbit_config["AMQP_URI"].rsplit("/", 1)[1]
    GATES["drop"] = threading.Event()
    with ClusterRpcProxy(rabbit_config, timeout=TIMEOUT) as proxy:
        reply = proxy.source.emit_until.call_async("drop", "drop")
        running.wait_for(50)  # events are flowing
        close_connection("nameko:source", vhost)
        GATES["drop"].set()
        try:
            count = reply.result()
        except RemoteError as exc:  # allowed: the worker failed, so nothing was promised
            assert exc.exc_type in {"ConnectionLost", "ConfirmLost", "BrokerClosed"}, exc
            return
    wanted = set(range(count))

    def all_delivered():
        return wanted <= {n for tag, n in running.items if tag == "drop"}

    wait_until(all_delivered, timeout=TIMEOUT, what=f"all of {count} events delivered")
