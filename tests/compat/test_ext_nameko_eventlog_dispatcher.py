"""nameko-eventlog-dispatcher 0.4.2, unchanged, on shimeji (pip install --no-deps).

`EventLogDispatcher` subclasses our `EventDispatcher`: ``dispatch(event_type,
event_data, metadata)`` sends a ``log_event`` wrapping the data in the
worker's context (service, entrypoint, call id and stack), and with
``EVENTLOG_DISPATCHER: {auto_capture: true}`` its ``worker_setup`` sends an
``entrypoint_fired`` event for every RPC and HTTP entrypoint. Its unit tests
bind it on ``create_autospec(ServiceContainer)`` (nameko's ``mock_container``
fixture) and call ``setup()`` with ``EventDispatcher.setup`` patched out.
"""

from __future__ import annotations

from unittest.mock import create_autospec, patch

import nameko_eventlog_dispatcher
import pytest
from nameko_eventlog_dispatcher import EventLogDispatcher

from nameko._concurrency import Event, Lock
from nameko.containers import ServiceContainer
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from tests.compat.ext_support import TIMEOUT, assert_installed_on_shimeji
from tests.waiting import wait_until


class Foo:
    name = "foo"

    eventlog_dispatcher = EventLogDispatcher()

    @rpc
    def foo_method(self):
        self.eventlog_dispatcher("foo_event_type", {"value": 1}, metadata={"meta": 2})
        return "done"

    @rpc
    def quiet(self):
        return "quiet"


class Bar:
    name = "bar"

    lock = Lock()
    bodies: list = []
    seen = Event()

    @event_handler("foo", "log_event")
    def foo_log_event_handler(self, body):
        with Bar.lock:
            Bar.bodies.append(body)
        Bar.seen.set()


@pytest.fixture
def bar(container_factory, rabbit_config):
    Bar.bodies = []
    Bar.seen = Event()
    container = container_factory(Bar, rabbit_config)
    container.start()
    return container


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-eventlog-dispatcher", "0.4.2")
    assert issubclass(nameko_eventlog_dispatcher.EventLogDispatcher, EventDispatcher)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (None, (False, [])),
        ({"auto_capture": True, "entrypoints_to_exclude": ["quiet"]}, (True, ["quiet"])),
    ],
)
def test_binds_and_sets_up_on_an_autospec_container(settings, expected):
    """Its unit tests' pattern: `bind` on ``create_autospec(ServiceContainer)``,
    which sees no ``shared_extensions`` (set per instance)."""
    container = create_autospec(ServiceContainer)
    container.config = {} if settings is None else {"EVENTLOG_DISPATCHER": settings}
    with patch.object(EventDispatcher, "setup") as super_setup:
        provider = EventLogDispatcher().bind(container, "eventlog_dispatcher")
        provider.setup()
    assert super_setup.call_count == 1
    assert provider.container is not None and provider.attr_name == "eventlog_dispatcher"
    assert (provider.auto_capture, provider.entrypoints_to_exclude) == expected


@pytest.mark.rabbit
def test_binding_on_a_real_container_still_shares_its_connection(rabbit_config):
    """The fallback is for doubles only: a real container keeps one shared
    broker connection for every extension that needs it."""
    container = ServiceContainer(Foo, rabbit_config)
    (provider,) = container.dependencies
    assert isinstance(provider, EventLogDispatcher)
    assert provider.connection is container.shared_extensions[type(provider.connection)]
    assert provider.connection in container.subextensions


@pytest.mark.rabbit
def test_dispatch_sends_a_log_event_with_the_worker_context(bar, container_factory, rabbit_config):
    """The README's usage: ``foo`` dispatches, ``bar`` handles ``log_event``."""
    container_factory(Foo, rabbit_config).start()
    with ServiceRpcProxy("foo", rabbit_config, timeout=TIMEOUT) as foo:
        assert foo.foo_method() == "done"
    assert Bar.seen.wait(TIMEOUT)
    (body,) = Bar.bodies
    assert body["service_name"] == "foo"
    assert body["entrypoint_protocol"] == "Rpc"
    assert body["entrypoint_name"] == "foo_method"
    assert body["event_type"] == "foo_event_type"
    assert body["data"] == {"value": 1} and body["meta"] == 2
    assert body["call_id"].startswith("foo.foo_method.")
    assert body["call_stack"][-1] == body["call_id"]


@pytest.mark.rabbit
def test_auto_capture_logs_each_rpc_call_but_the_excluded(bar, container_factory, rabbit_config):
    config = {
        **rabbit_config,
        "EVENTLOG_DISPATCHER": {"auto_capture": True, "entrypoints_to_exclude": ["quiet"]},
    }
    container_factory(Foo, config).start()
    with ServiceRpcProxy("foo", config, timeout=TIMEOUT) as foo:
        assert foo.quiet() == "quiet"
        assert foo.foo_method() == "done"

    def two_events() -> bool:
        with Bar.lock:
            return len(Bar.bodies) >= 2

    wait_until(two_events, TIMEOUT, interval=0.05, what="the fired and the dispatched events")
    kinds = sorted((b["entrypoint_name"], b["event_type"]) for b in Bar.bodies)
    assert kinds == [("foo_method", "entrypoint_fired"), ("foo_method", "foo_event_type")]
