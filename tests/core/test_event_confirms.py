"""The events guarantee: ``dispatch`` does not wait for the
broker's confirm, but a worker's result is reported (reply sent, message
acked) only once all its events are confirmed; a nack fails the worker; a
connection lost before the confirm re-publishes the event.

The confirms are withheld by the test: the memory broker's `publish_async`
is wrapped so that it hands out outcomes the test settles (the message
itself is published for real, so handlers see it)."""

from __future__ import annotations

import threading

import pytest

from nameko._broker import connect
from nameko._broker.base import Binding, ConnectionLost, Exchange, PublishNacked, Queue
from nameko._broker.memory import MemoryBroker
from nameko._concurrency import OneShot
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import TIMEOUT, Recorder


class Withheld:
    """Confirms of event publishes, held until the test settles them."""

    def __init__(self) -> None:
        self.outcomes: list[OneShot[None]] = []
        self.published = threading.Semaphore(0)

    def wrap(self, original):
        def publish_async(broker, exchange, routing_key, body, properties, **kwargs):
            original(broker, exchange, routing_key, body, properties, **kwargs).wait()
            outcome: OneShot[None] = OneShot()
            self.outcomes.append(outcome)
            self.published.release()
            return outcome

        return publish_async

    def wait_published(self, count: int) -> None:
        for _ in range(count):
            assert self.published.acquire(timeout=TIMEOUT), "the event was not published"


@pytest.fixture
def withheld(monkeypatch):
    held = Withheld()
    monkeypatch.setattr(MemoryBroker, "publish_async", held.wrap(MemoryBroker.publish_async))
    return held


class Source:
    name = "source"
    dispatch = EventDispatcher()

    @rpc
    def emit(self, count):
        for n in range(count):
            self.dispatch("thing", n)
        return count


def handler_service(recorder):
    class Sink:
        name = "sink"

        @event_handler("source", "thing")
        def handle(self, data):
            recorder.add(data)

    return Sink


def replied_within(reply, seconds: float) -> bool:
    return reply.reply_event._slot.wait(seconds)


def test_the_reply_waits_for_every_confirm(start, config, withheld):
    seen = Recorder()
    start(handler_service(seen))
    start(Source)
    with ClusterRpcProxy(config) as proxy:
        reply = proxy.source.emit.call_async(3)
        withheld.wait_published(3)
        seen.wait_for(3)  # the events are out: only their confirms are held
        withheld.outcomes[0].send(None)
        withheld.outcomes[2].send(None)
        assert not replied_within(reply, 0.2)  # one confirm still held: no reply
        withheld.outcomes[1].send(None)
        assert reply.result() == 3


def test_a_nacked_event_fails_the_worker(start, config, withheld):
    start(Source)
    with ClusterRpcProxy(config) as proxy:
        reply = proxy.source.emit.call_async(2)
        withheld.wait_published(2)
        withheld.outcomes[0].send_exception(PublishNacked("nacked by the broker"))
        withheld.outcomes[1].send(None)
        with pytest.raises(Exception, match="nacked by the broker"):
            reply.result()


def test_an_event_whose_connection_was_lost_is_published_again(start, config, withheld):
    seen = Recorder()
    start(handler_service(seen))
    start(Source)
    with ClusterRpcProxy(config) as proxy:
        reply = proxy.source.emit.call_async(1)
        withheld.wait_published(1)
        withheld.outcomes[0].send_exception(ConnectionLost("connection lost"))
        assert reply.result() == 1
    seen.wait_for(2)
    assert sorted(seen.items) == [0, 0]  # at least once: sent again, never lost


def refuse_events(config, exchange="source.events", routing_key="thing"):
    """A queue bound to the events that nacks every publish (full at length 0)."""
    with connect(config["AMQP_URI"]) as broker:
        broker.declare(
            [
                Exchange(exchange),
                Queue("refuse", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}),
                Binding("refuse", exchange, routing_key),
            ]
        )


class Careful:
    name = "source"
    dispatch = EventDispatcher(pipeline=False)

    @rpc
    def emit(self):
        try:
            self.dispatch("thing", 1)
        except Exception as exc:
            return f"caught {type(exc).__name__}"
        return "sent"


def test_pipeline_false_raises_inside_dispatch(start, config):
    start(Careful)
    refuse_events(config)
    with ClusterRpcProxy(config) as proxy:
        assert proxy.source.emit() == "caught PublishNacked"


def test_the_standalone_dispatcher_flushes_at_its_confirm_point(start, config, withheld):
    seen = Recorder()
    start(handler_service(seen))
    with event_dispatcher(config, pipeline=True) as dispatch:
        for n in range(3):
            dispatch("source", "thing", n)
        withheld.wait_published(3)
        flushed = threading.Event()
        failure = []

        def flush():
            try:
                dispatch.flush()
            except Exception as exc:
                failure.append(exc)
            flushed.set()

        threading.Thread(target=flush).start()
        withheld.outcomes[0].send(None)
        withheld.outcomes[1].send_exception(PublishNacked("nacked"))
        assert not flushed.wait(0.2)  # still waiting for the third
        withheld.outcomes[2].send(None)
        assert flushed.wait(TIMEOUT)
        assert [str(exc) for exc in failure] == ["nacked"]
    seen.wait_for(3)
