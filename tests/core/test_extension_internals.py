"""What nameko 2.x extensions use below the public API, read as they read it:
the kombu-like message handed to ``handle_message`` /
``handle_result`` overrides, ``RpcConsumer.handle_message`` and its
``queue_consumer``, ``container._worker_threads`` with ``gr_frame``, the 2.x
``QueueConsumer``, ``Responder`` and nameko 3's ``nameko.amqp.consume.Consumer``.
All on the in-memory broker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, Queue
from nameko._concurrency import Event, current_thread_name, start_thread
from nameko._messaging.message import Message
from nameko.amqp.consume import Consumer as AmqpConsumer
from nameko.amqp.publish import Publisher as CorePublisher
from nameko.events import EventDispatcher, EventHandler
from nameko.extensions import Entrypoint
from nameko.messaging import Consumer, QueueConsumer
from nameko.rpc import Responder, Rpc, RpcConsumer
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from tests.core.helpers import TIMEOUT, Recorder
from tests.waiting import wait_until

# -- the message, as extensions read it ---------------------------------------------


def snapshot(message: Any) -> dict[str, Any]:
    """Everything kombu-era extensions read from a message."""
    return {
        "headers": dict(message.headers),
        "properties": {
            **message.properties,
            "application_headers": dict(message.properties["application_headers"]),
        },
        "delivery_info": dict(message.delivery_info),
        "body": message.body,
        "payload": message.payload,
        "content_type": message.content_type,
        "delivery_tag": message.delivery_tag,
        "acknowledged": message.acknowledged,
    }


def mark_headers(message: Any) -> bool:
    """Edit headers the way nameko-amqp-retry does; True if properties see it."""
    message.headers["nameko.call_id_stack"] = ["changed"]
    message.headers["extra"] = 1
    properties = message.properties.copy()
    seen = properties.pop("application_headers")
    return seen is message.headers and seen["extra"] == 1


class ReadingConsumer(Consumer):
    seen = Recorder()

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        before = snapshot(message)
        shared = mark_headers(message)
        result, exc_info = super().handle_result(message, worker_ctx, result, exc_info)
        self.seen.add((before, shared, message.acknowledged))
        return result, exc_info


class ConsumingService:
    name = "consuming"

    @ReadingConsumer.decorator(Queue("jobs"))
    def job(self, body):
        return body


def test_consume_hands_handle_result_a_kombu_like_message(start, config):
    ReadingConsumer.seen = Recorder()
    start(ConsumingService)
    publisher = CorePublisher(config["AMQP_URI"])
    publisher.publish(
        {"n": 1},
        routing_key="jobs",
        headers={"nameko.language": "en"},
        correlation_id="cid-1",
        reply_to="somewhere",
    )
    [(seen, shared, acked_after)] = ReadingConsumer.seen.wait_for(1)
    assert seen["headers"] == {"nameko.language": "en"}
    assert seen["payload"] == {"n": 1}
    assert json.loads(seen["body"]) == {"n": 1}
    assert seen["content_type"] == "application/json"
    props = seen["properties"]
    assert props["content_type"] == "application/json"
    assert props["content_encoding"] == "utf-8"
    assert props["correlation_id"] == "cid-1"
    assert props["reply_to"] == "somewhere"
    assert props["delivery_mode"] == 2
    assert props["application_headers"] == {"nameko.language": "en"}
    info = seen["delivery_info"]
    assert info["routing_key"] == "jobs" and info["exchange"] == ""
    assert info["redelivered"] is False
    assert info["delivery_tag"] == seen["delivery_tag"]
    assert seen["acknowledged"] is False
    assert shared is True  # properties['application_headers'] is message.headers
    assert acked_after is True


class ReadingEventHandler(EventHandler):
    seen = Recorder()

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        self.seen.add((snapshot(message), worker_ctx.data))
        return super().handle_result(message, worker_ctx, result, exc_info)


class EventService:
    name = "listening"

    @ReadingEventHandler.decorator("src", "happened")
    def on_event(self, payload):
        pass


class EmittingService:
    name = "src"
    dispatch = EventDispatcher()


def test_event_handler_hands_handle_result_a_kombu_like_message(start, config):
    ReadingEventHandler.seen = Recorder()
    start(EmittingService)
    start(EventService)
    event_dispatcher(config)("src", "happened", {"what": "x"})
    [(seen, data)] = ReadingEventHandler.seen.wait_for(1)
    assert seen["payload"] == {"what": "x"}
    assert seen["delivery_info"]["exchange"] == "src.events"
    assert seen["delivery_info"]["routing_key"] == "happened"
    assert seen["properties"]["application_headers"] == seen["headers"]


def test_the_message_can_be_requeued_and_rejected(config):
    uri = config["AMQP_URI"]
    deliveries = Recorder()
    with connect(uri) as broker:
        broker.consume("q", deliveries.add, topology=[Queue("q")])
        CorePublisher(uri).publish("a", routing_key="q")
        first = Message(deliveries.wait_for(1)[0])
        assert first.requeue() is True and first.acknowledged
        again = Message(deliveries.wait_for(2)[1])
        assert again.delivery_info["redelivered"] is True
        assert again.reject() is True
        assert again.ack() is False  # settled already: a no-op


# -- RPC: handle_message is the path every request takes -----------------------------


class CountingRpcConsumer(RpcConsumer):
    routed = Recorder()

    def handle_message(self, body, message):
        self.routed.add((body, message.delivery_info["routing_key"]))
        super().handle_message(body, message)


class RequeueOnceRpc(Rpc):
    rpc_consumer = CountingRpcConsumer()
    seen = Recorder()

    def handle_result(self, message, worker_ctx, result, exc_info):
        self.seen.add(snapshot(message))
        if not message.delivery_info["redelivered"]:
            # 2.x extensions settle through rpc_consumer.queue_consumer
            self.rpc_consumer.queue_consumer.requeue_message(message)
            return result, exc_info
        return super().handle_result(message, worker_ctx, result, exc_info)


class AckWithoutReplyRpc(Rpc):
    acked = Event()

    def handle_result(self, message, worker_ctx, result, exc_info):
        self.rpc_consumer.queue_consumer.ack_message(message)
        self.acked.set()
        return result, exc_info


class RpcService:
    name = "answering"

    @RequeueOnceRpc.decorator
    def hello(self, name):
        return f"hello {name}"


def test_rpc_consumer_subclass_sees_every_request_and_requeue_works(start, config):
    CountingRpcConsumer.routed = Recorder()
    RequeueOnceRpc.seen = Recorder()
    start(RpcService)
    with ServiceRpcProxy("answering", config, timeout=TIMEOUT) as proxy:
        assert proxy.hello("ann") == "hello ann"
        with pytest.raises(Exception, match="nosuch"):
            proxy.nosuch()  # unknown methods go through handle_message too
    routed = CountingRpcConsumer.routed.wait_for(3)
    assert routed[0] == ({"args": ["ann"], "kwargs": {}}, "answering.hello")
    assert routed[1][1] == "answering.hello"  # the requeued request, again
    assert routed[2][1] == "answering.nosuch"
    first, second = RequeueOnceRpc.seen.wait_for(2)
    assert first["properties"]["reply_to"] and first["properties"]["correlation_id"]
    assert first["headers"]["nameko.call_id_stack"][0].startswith("standalone_rpc_proxy")
    assert second["delivery_info"]["redelivered"] is True


class SilentService:
    name = "silent"

    @AckWithoutReplyRpc.decorator
    def work(self):
        return "never sent"


def test_queue_consumer_ack_message_settles_an_rpc_request(start, config):
    AckWithoutReplyRpc.acked = Event()
    container = start(SilentService)
    with ServiceRpcProxy("silent", config, timeout=0.5) as proxy:
        with pytest.raises(Exception):  # noqa: B017 - no reply: a timeout
            proxy.work()
    assert AckWithoutReplyRpc.acked.wait(TIMEOUT)
    container.stop()  # returns: nothing is left unacked
    assert isinstance(RequeueOnceRpc.rpc_consumer.queue_consumer, QueueConsumer)


# -- container._worker_threads --------------------------------------------------------


class SlowService:
    name = "slow"
    release = Event()

    @Rpc.decorator
    def wait_here(self):
        self.release.wait(TIMEOUT)
        return "released"


def test_worker_threads_expose_their_stack_as_gr_frame(start, config):
    SlowService.release = Event()
    container = start(SlowService)
    with ServiceRpcProxy("slow", config, timeout=TIMEOUT) as proxy:
        reply = proxy.wait_here.call_async()
        wait_until(lambda: container._worker_threads, TIMEOUT, what="a running worker")
        [(worker_ctx, handle)] = container._worker_threads.items()
        assert worker_ctx.entrypoint.method_name == "wait_here"
        functions = []
        frame = handle.gr_frame
        while frame is not None:  # how nameko's debug endpoints walk a stack
            functions.append(frame.f_code.co_name)
            frame = frame.f_back
        assert "wait_here" in functions
        assert handle.name.startswith("slow-worker")  # the thread's own attributes
        SlowService.release.set()
        assert reply.result() == "released"
    wait_until(lambda: not container._worker_threads, TIMEOUT, what="the worker gone")


# -- the 2.x QueueConsumer ------------------------------------------------------------


class LegacyEntrypoint(Entrypoint):
    """A nameko 2.x style consuming entrypoint, written against QueueConsumer."""

    queue_consumer = QueueConsumer()

    def __init__(self, queue_name, **kwargs):
        self.queue = Queue(queue_name)
        super().__init__(**kwargs)

    def setup(self):
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, body, message):
        self.thread_name = current_thread_name()
        self.container.spawn_worker(
            self, (body,), {}, handle_result=lambda ctx, res, exc: self.settle(message, res, exc)
        )

    def settle(self, message, result, exc_info):
        self.queue_consumer.ack_message(message)
        return result, exc_info


class LegacyService:
    name = "legacy"
    seen = Recorder()

    @LegacyEntrypoint.decorator("legacy-jobs")
    def job(self, body):
        self.seen.add(body)


def test_queue_consumer_feeds_registered_providers(start, config):
    LegacyService.seen = Recorder()
    container = start(LegacyService)
    CorePublisher(config["AMQP_URI"]).publish({"job": 1}, routing_key="legacy-jobs")
    assert LegacyService.seen.wait_for(1) == [{"job": 1}]
    [entrypoint] = container.entrypoints
    # handle_message runs on a thread of its own, named as nameko 2.x named it
    assert entrypoint.thread_name.startswith("LegacyEntrypoint.handle_message[legacy-jobs]")
    container.stop()


def test_queue_consumer_refuses_kombu_mixin_methods():
    with pytest.raises(NotImplementedError, match="nameko.amqp.consume.Consumer"):
        QueueConsumer().get_consumers  # noqa: B018
    with pytest.raises(AttributeError):
        QueueConsumer().no_such_attribute  # noqa: B018


# -- Responder ------------------------------------------------------------------------


@pytest.fixture
def replies(config):
    """Consumes what is published to nameko-rpc with routing key 'reply-key'."""
    seen = Recorder()
    with connect(config["AMQP_URI"]) as broker:
        broker.consume(
            "replies",
            lambda delivery: (delivery.ack(), seen.add(delivery)),
            topology=[
                Exchange("nameko-rpc"),
                Queue("replies"),
                Binding("replies", "nameko-rpc", "reply-key"),
            ],
        )
        yield seen


class RequestLike:
    properties = {"reply_to": "reply-key", "correlation_id": "cid-7"}


@pytest.mark.parametrize("legacy", [False, True], ids=["2.14", "config-first"])
def test_responder_publishes_a_reply_in_nameko_wire_format(config, replies, legacy):
    exchange = Exchange("nameko-rpc")
    if legacy:
        responder = Responder(config, exchange, RequestLike())
    else:
        responder = Responder(config["AMQP_URI"], exchange, "json", RequestLike())
    assert responder.send_response({"x": 1}, None) == ({"x": 1}, None)
    [delivery] = replies.wait_for(1)
    assert json.loads(delivery.body) == {"result": {"x": 1}, "error": None}
    assert delivery.properties.correlation_id == "cid-7"
    assert delivery.properties.content_type == "application/json"
    assert delivery.properties.delivery_mode == 2


def test_responder_replaces_an_unserialisable_result(config, replies):
    responder = Responder(config["AMQP_URI"], "nameko-rpc", "json", RequestLike())
    result, exc_info = responder.send_response(object(), None)
    assert result is None and exc_info[0].__name__ == "UnserializableValueError"
    [delivery] = replies.wait_for(1)
    error = json.loads(delivery.body)["error"]
    assert error["exc_path"] == "nameko.exceptions.UnserializableValueError"


def test_responder_sends_errors(config, replies):
    responder = Responder(config["AMQP_URI"], "nameko-rpc", "json", RequestLike())
    exc = ValueError("bad thing", 42)
    responder.send_response(None, (ValueError, exc, None))
    [delivery] = replies.wait_for(1)
    assert json.loads(delivery.body)["error"] == {
        "exc_type": "ValueError",
        "exc_path": "builtins.ValueError",
        "exc_args": ["bad thing", "42"],
        "value": "('bad thing', 42)",
    }


# -- nameko.amqp.consume.Consumer -------------------------------------------------------


class Running:
    """A Consumer running on a thread of its own, as nameko 3 runs it."""

    def __init__(self, consumer: AmqpConsumer) -> None:
        self.consumer = consumer
        self.returned = Event()
        start_thread(self._run, "test-amqp-consumer")
        consumer.wait_until_consumer_ready(TIMEOUT)

    def _run(self) -> None:
        try:
            self.consumer.run()
        finally:
            self.returned.set()

    def stop(self) -> None:
        self.consumer.stop()
        assert self.returned.wait(TIMEOUT)


def test_amqp_consumer_calls_back_on_its_run_thread(config):
    uri = config["AMQP_URI"]
    seen = Recorder()

    def callback(body, message):
        seen.add((body, message.delivery_info["routing_key"], current_thread_name()))
        consumer.ack_message(message)

    consumer = AmqpConsumer(uri, queues=[Queue("work")], callbacks=[callback], prefetch_count=2)
    running = Running(consumer)
    publisher = CorePublisher(uri)
    for n in range(3):
        publisher.publish({"n": n}, routing_key="work")
    assert [item[0] for item in seen.wait_for(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {item[2] for item in seen.items} == {"test-amqp-consumer"}
    running.stop()


def test_amqp_consumer_requeues_what_arrives_after_stop(config):
    uri = config["AMQP_URI"]
    first = Recorder()
    blocked = Event()

    def slow(body, message):
        first.add(body)
        blocked.wait(TIMEOUT)  # the run thread is busy: later messages wait
        consumer.ack_message(message)

    consumer = AmqpConsumer(uri, queues=[Queue("later")], callbacks=[slow])
    running = Running(consumer)
    publisher = CorePublisher(uri)
    publisher.publish("one", routing_key="later")
    first.wait_for(1)
    publisher.publish("two", routing_key="later")
    consumer.stop()
    blocked.set()
    assert running.returned.wait(TIMEOUT)

    after = Recorder()
    rerun = Running(
        AmqpConsumer(
            uri,
            queues=[Queue("later")],
            callbacks=[lambda body, message: (message.ack(), after.add(body))],
        )
    )
    assert after.wait_for(1) == ["two"]  # requeued, not lost, not run by the first
    assert first.items == ["one"]
    rerun.stop()


def test_amqp_consumer_rejects_what_it_may_not_decode(config):
    uri = config["AMQP_URI"]
    seen = Recorder()
    consumer = AmqpConsumer(
        uri, queues=[Queue("strict")], callbacks=[lambda b, m: seen.add(b)], accept=["json"]
    )
    running = Running(consumer)
    publisher = CorePublisher(uri)
    publisher.publish("x: 1", routing_key="strict", serializer="yaml")
    publisher.publish({"ok": True}, routing_key="strict")
    assert seen.wait_for(1) == [{"ok": True}]
    running.stop()


def test_amqp_consumer_reports_a_failed_start():
    consumer = AmqpConsumer("nosuch://x", queues=[Queue("q")])
    with pytest.raises(ValueError):
        consumer.run()
    with pytest.raises(ValueError):
        consumer.wait_until_consumer_ready(TIMEOUT)


def test_call_id_stack_is_a_new_list_each_time(start, config):
    """nameko-amqp-retry edits the list it gets for the headers it republishes."""
    seen = Recorder()

    class Stacks:
        name = "stacks"

        @Rpc.decorator
        def stack(self):
            pass

    class Spy(Rpc):
        def handle_result(self, message, worker_ctx, result, exc_info):
            stack = worker_ctx.call_id_stack
            stack[-1] += ".backoff"
            seen.add((stack, worker_ctx.call_id_stack))
            return super().handle_result(message, worker_ctx, result, exc_info)

    Stacks.stack.nameko_entrypoints = {Spy()}
    start(Stacks)
    with ServiceRpcProxy("stacks", config, timeout=TIMEOUT) as proxy:
        proxy.stack()
    [(edited, fresh)] = seen.wait_for(1)
    assert edited[-1].endswith(".backoff") and not fresh[-1].endswith(".backoff")


# -- nameko.testing.utils.ResourcePipeline -------------------------------------------


def test_resource_pipeline_creates_ahead_and_destroys_after_use():
    from itertools import count

    from nameko.testing.utils import ResourcePipeline

    made = count()
    destroyed = Recorder()
    pipeline = ResourcePipeline(lambda: next(made), destroyed.add, size=2)
    with pipeline.run():
        with pipeline.get() as first:
            assert first == 0
        assert destroyed.wait_for(1) == [0]
        with pipeline.get() as second:
            assert second == 1
    # leaving run() destroys the used one and everything made ahead
    assert sorted(destroyed.items) == list(range(next(made)))
    with pytest.raises(RuntimeError):
        ResourcePipeline(lambda: None, lambda r: None, size=0)
