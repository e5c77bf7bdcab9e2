"""Events end to end on the in-memory broker: dispatchers, handlers of every
type, the wire format, context propagation, requeue and exchange declaration."""

from __future__ import annotations

import json

import pytest

from nameko._broker import connect
from nameko._broker.base import Binding, Exchange, NotFound, Queue
from nameko.containers import ServiceContainer
from nameko.events import (
    BROADCAST,
    SERVICE_POOL,
    SINGLETON,
    EventDispatcher,
    EventHandlerConfigurationError,
    event_handler,
)
from nameko.standalone.events import event_dispatcher, get_event_exchange
from nameko.testing.services import dummy, entrypoint_hook, entrypoint_waiter
from tests.core.helpers import TIMEOUT, Recorder, WorkerCtx


class Source:
    name = "src"
    dispatch = EventDispatcher()

    @dummy
    def send(self, event_type, data):
        self.dispatch(event_type, data)


def send(container, event_type, data, context_data=None):
    with entrypoint_hook(container, "send", context_data=context_data) as hook:
        hook(event_type, data)


def handler_service(name, recorder, handler_type=SERVICE_POOL, **options):
    class Handler:
        ctx = WorkerCtx()

        @event_handler("src", "thing", handler_type=handler_type, **options)
        def handle(self, data):
            recorder.add((self.ctx.container, data))

    Handler.name = name
    return Handler


def test_service_pool_each_event_reaches_one_instance_of_each_service(start):
    seen_a, seen_b = Recorder(), Recorder()
    instances = [start(handler_service("a", seen_a)) for _ in range(2)]
    start(handler_service("b", seen_b))
    source = start(Source)

    for n in range(6):
        send(source, "thing", n)

    for seen in (seen_a, seen_b):
        assert sorted(data for _, data in seen.wait_for(6)) == list(range(6))
    for container in [*instances, source]:
        container.stop()  # graceful: anything delivered twice would be handled by now
    assert sorted(data for _, data in seen_a.items) == list(range(6))
    assert {container for container, _ in seen_a.items} == set(instances)  # shared the work


def test_singleton_each_event_reaches_one_handler_across_services(start):
    seen = Recorder()
    handlers = [start(handler_service(name, seen, SINGLETON)) for name in ("a", "b")]
    source = start(Source)

    for n in range(6):
        send(source, "thing", n)

    seen.wait_for(6)
    for container in [*handlers, source]:
        container.stop()
    assert sorted(data for _, data in seen.items) == list(range(6))


def test_broadcast_every_instance_gets_every_event(start):
    seen = Recorder()
    instances = [
        start(handler_service("a", seen, BROADCAST, reliable_delivery=False)) for _ in range(3)
    ]
    source = start(Source)

    send(source, "thing", "hello")

    items = seen.wait_for(3)
    assert sorted(id(c) for c, _ in items) == sorted(id(c) for c in instances)
    assert {data for _, data in items} == {"hello"}


def test_handler_queues_follow_the_wire_contract(config):
    class Handlers:
        name = "svc"

        @event_handler("src", "thing")
        def pool(self, data):
            pass

        @event_handler("src", "thing", handler_type=SINGLETON, reliable_delivery=False)
        def single(self, data):
            pass

        @event_handler("src", "thing", handler_type=BROADCAST, reliable_delivery=False)
        def broad(self, data):
            pass

    container = ServiceContainer(Handlers, config)
    topology = {ep.method_name: ep.get_topology() for ep in container.entrypoints}
    exchange = Exchange("src.events", type="topic", durable=True, auto_delete=False)

    name, entities = topology["pool"]
    assert name == "evt-src-thing--svc.pool"
    assert entities == [exchange, Queue(name), Binding(name, "src.events", "thing")]
    name, entities = topology["single"]
    assert name == "evt-src-thing"
    assert entities[1] == Queue(name, durable=True, exclusive=False, auto_delete=True)
    name, entities = topology["broad"]
    prefix = "evt-src-thing--svc.broad-"
    assert name.startswith(prefix) and len(name) == len(prefix) + 32  # uuid4 hex
    assert entities[1] == Queue(name, durable=True, exclusive=True, auto_delete=True)
    assert entities[2] == Binding(name, "src.events", "thing")


def test_broadcast_with_reliable_delivery_fails_at_container_construction(config):
    class Broken:
        name = "broken"

        @event_handler("src", "thing", handler_type=BROADCAST)
        def handle(self, data):
            pass

    with pytest.raises(EventHandlerConfigurationError, match="broadcast identifier"):
        ServiceContainer(Broken, config)


def test_broadcast_with_its_own_identifier_may_be_reliable(config):
    from nameko.events import EventHandler

    class HostHandler(EventHandler):
        @property
        def broadcast_identifier(self):
            return "host-1"

    class Service:
        name = "svc"

        @HostHandler.decorator("src", "thing", handler_type=BROADCAST)
        def handle(self, data):
            pass

    container = ServiceContainer(Service, config)
    (entrypoint,) = container.entrypoints
    name, entities = entrypoint.get_topology()
    assert name == "evt-src-thing--svc.handle-host-1"
    assert entities[1] == Queue(name, durable=True, exclusive=False, auto_delete=False)


def test_unknown_handler_type_fails_at_container_construction(config):
    class Broken:
        name = "broken"

        @event_handler("src", "thing", handler_type="everyone")
        def handle(self, data):
            pass

    with pytest.raises(EventHandlerConfigurationError, match="everyone"):
        ServiceContainer(Broken, config)


def test_handler_type_is_compared_by_value(config):
    singleton = "".join(["single", "ton"])  # equal, not the same object

    class Service:
        name = "svc"

        @event_handler("src", "thing", handler_type=singleton)
        def handle(self, data):
            pass

    container = ServiceContainer(Service, config)
    (entrypoint,) = container.entrypoints
    assert entrypoint.get_topology()[0] == "evt-src-thing"


def test_wire_format_of_a_dispatched_event(start, config):
    source = start(Source)
    seen = Recorder()
    with connect(config["AMQP_URI"]) as broker:
        broker.consume(
            "spy",
            lambda delivery: (delivery.ack(), seen.add(delivery)),
            topology=[Queue("spy"), Binding("spy", "src.events", "#")],
        )
        with pytest.warns(UserWarning, match="None value dropped: skip"):
            send(source, "thing_happened", {"x": 1}, context_data={"user_id": 7, "skip": None})
        (delivery,) = seen.wait_for(1)

    props = delivery.properties
    assert (delivery.exchange, delivery.routing_key) == ("src.events", "thing_happened")
    assert json.loads(delivery.body) == {"x": 1}
    assert (props.content_type, props.content_encoding) == ("application/json", "utf-8")
    assert (props.delivery_mode, props.priority) == (2, 0)
    assert props.correlation_id is None and props.reply_to is None
    assert set(props.headers) == {"nameko.user_id", "nameko.call_id_stack"}
    assert props.headers["nameko.user_id"] == 7
    (call_id,) = props.headers["nameko.call_id_stack"]
    assert call_id.startswith("src.send.")


def test_context_data_flows_from_dispatching_worker_to_handler(start):
    seen = Recorder()

    class Handler:
        name = "handler"
        ctx = WorkerCtx()

        @event_handler("src", "thing")
        def handle(self, data):
            seen.add(self.ctx)

    start(Handler)
    source = start(Source)
    send(source, "thing", "x", context_data={"language": "fr", "user_id": 3})

    (ctx,) = seen.wait_for(1)
    assert ctx.data == {"language": "fr", "user_id": 3}
    assert ctx.args == ("x",)
    parent, own = ctx.call_id_stack
    assert parent.startswith("src.send.") and own.startswith("handler.handle.")


@pytest.mark.parametrize("requeue_on_error", [False, True])
def test_failing_handler_is_retried_once_when_asked(start, requeue_on_error):
    attempts = Recorder()

    class Flaky:
        name = "flaky"
        ctx = WorkerCtx()

        @event_handler("src", "thing", requeue_on_error=requeue_on_error)
        def handle(self, data):
            attempts.add(data)
            if data == "poison":
                raise ValueError("never works")

    flaky = start(Flaky, max_workers=1)  # prefetch 1: strictly one message at a time
    source = start(Source)
    expected = 2 if requeue_on_error else 1
    with entrypoint_waiter(
        flaky,
        "handle",
        timeout=TIMEOUT,
        callback=lambda ctx, result, exc_info: len(attempts.items) == expected,
    ):
        send(source, "thing", "poison")
    # A third attempt would have been requeued ahead of this message.
    probe = lambda ctx, result, exc_info: ctx.args == ("probe",)  # noqa: E731
    with entrypoint_waiter(flaky, "handle", timeout=TIMEOUT, callback=probe):
        send(source, "thing", "probe")
    assert attempts.items == ["poison"] * expected + ["probe"]


def test_requeued_event_succeeds_on_redelivery(start):
    attempts = Recorder()

    class Transient:
        name = "transient"

        @event_handler("src", "thing", requeue_on_error=True)
        def handle(self, data):
            attempts.add(data)
            if len(attempts.items) == 1:
                raise ConnectionError("database blinked")

    start(Transient, max_workers=1)
    source = start(Source)
    send(source, "thing", "once")
    assert attempts.wait_for(2) == ["once", "once"]


def test_undeclared_event_exchange_is_not_declared(start, config):
    no_declare = {"DECLARE_EVENT_EXCHANGES": False}
    seen = Recorder()
    with pytest.raises(NotFound):
        start(handler_service("handler", seen), **no_declare)  # binding to a missing exchange
    source = start(Source, **no_declare)
    with pytest.raises(NotFound):
        send(source, "thing", 1)

    with connect(config["AMQP_URI"]) as broker:  # someone else declares it
        broker.declare([get_event_exchange("src", config)])
    start(handler_service("handler", seen), **no_declare)
    send(source, "thing", 2)
    assert [data for _, data in seen.wait_for(1)] == [2]


def test_auto_delete_event_exchanges(config):
    exchange = get_event_exchange("svc", {**config, "AUTO_DELETE_EVENT_EXCHANGES": True})
    assert exchange == Exchange("svc.events", type="topic", durable=True, auto_delete=True)
    assert get_event_exchange("svc", config).auto_delete is False


def test_standalone_dispatcher_declares_the_exchange_and_sends_no_headers(start, config):
    seen = Recorder()
    dispatch = event_dispatcher(config)
    dispatch("src", "thing", "before anyone listens")  # nameko: 404 NOT_FOUND

    class Handler:
        name = "handler"
        ctx = WorkerCtx()

        @event_handler("src", "thing")
        def handle(self, data):
            seen.add((data, self.ctx.data))

    start(Handler)
    dispatch("src", "thing", {"n": 1})
    assert seen.wait_for(1) == [({"n": 1}, {})]


def test_standalone_dispatcher_honours_declare_event_exchanges(config):
    dispatch = event_dispatcher({**config, "DECLARE_EVENT_EXCHANGES": False})
    with pytest.raises(NotFound):
        dispatch("nobody", "thing", 1)


def test_standalone_dispatcher_takes_publisher_options(start, config):
    seen = Recorder()
    with connect(config["AMQP_URI"]) as broker:
        broker.consume(
            "spy",
            lambda delivery: (delivery.ack(), seen.add(delivery)),
            topology=[
                get_event_exchange("src", config),
                Queue("spy"),
                Binding("spy", "src.events", "#"),
            ],
        )
        event_dispatcher(config, serializer="pickle", priority=5)("src", "thing", {1, 2})
        (delivery,) = seen.wait_for(1)
    assert delivery.properties.content_type == "application/x-python-serialize"
    assert delivery.properties.priority == 5
    assert delivery.properties.headers == {}
