"""Presence (D29): instances announce themselves on start, periodically and
on stop, answer discovery, and carry their entrypoints and call stats."""

from __future__ import annotations

import json

import pytest

from nameko.events import event_handler
from nameko.exceptions import RemoteError
from nameko.presence import Announcer
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.timer import timer
from nameko.web.handlers import http
from tests.waiting import wait_until

TIMEOUT = 10


class Greeter:
    name = "greeter"

    @rpc
    def hello(self, name: str, greeting: str = "hello") -> str:
        """Greet someone.

        A longer explanation."""
        return f"{greeting} {name}"

    @rpc
    def fail(self):
        raise ValueError("no")

    @event_handler("orders", "placed")
    def on_placed(self, payload):
        pass

    @timer(interval=3600)
    def tick(self):
        pass


class Web:
    name = "web"

    @http("GET", "/hi")
    async def hi(self, request):
        return "hi"


def by_service(name):
    return lambda seen: any(s.message["service"] == name for s in seen)


def entrypoint(message, key):
    return next(ep for ep in message["entrypoints"] if ep["key"] == key)


def test_discovery_sees_a_running_instance_with_its_entrypoints(announced, roster):
    container, announcer = announced(Greeter)
    roster.discover()
    assert roster.wait_for(by_service("greeter"), TIMEOUT)
    [seen] = roster.instances()
    message = seen.message
    assert message["kind"] == "announce"
    assert message["state"] == "running"
    assert message["pid"] == announcer.pid and message["host"] == announcer.host
    assert message["max_workers"] == container.max_workers
    assert message["version"] and message["started"] > 0
    hello = entrypoint(message, "rpc:hello")
    assert hello["signature"] == "(name: str, greeting: str = ...) -> str"  # no default values
    assert hello["doc"].splitlines()[0] == "Greet someone."
    assert entrypoint(message, "event_handler:on_placed")["detail"] == (
        "orders.placed (service_pool)"
    )
    assert entrypoint(message, "timer:tick")["detail"] == "every 3600 s"
    assert sorted(roster.services()) == ["greeter"]


def test_an_instance_announces_its_start_without_being_asked(config, announced, roster):
    announced(Greeter)  # the roster listens already: no discovery request
    assert roster.wait_for(by_service("greeter"), TIMEOUT)


def test_stats_count_calls_errors_and_latency(config, announced, roster):
    announced(Greeter)
    with ClusterRpcProxy(config, timeout=TIMEOUT) as cluster:
        for _ in range(3):
            cluster.greeter.hello("ann")
        with pytest.raises(RemoteError):
            cluster.greeter.fail()

    def counted(seen):
        if not seen:
            return False
        stats = entrypoint(seen[0].message, "rpc:hello")["stats"]
        return stats is not None and stats["calls"] == 3

    roster.discover()
    assert roster.wait_for(counted, TIMEOUT), roster.instances()
    message = roster.instances()[0].message
    hello, fail = entrypoint(message, "rpc:hello")["stats"], entrypoint(message, "rpc:fail")
    assert hello["errors"] == 0 and hello["in_flight"] == 0
    assert sum(hello["buckets"]) == 3 and hello["latency_sum"] > 0
    assert fail["stats"]["calls"] == 1 and fail["stats"]["errors"] == 1
    assert entrypoint(message, "timer:tick")["stats"] is None  # never ran


def test_periodic_announcements(announced, roster):
    announced(Greeter, interval=0.2)
    assert roster.wait_for(lambda seen: bool(seen) and len(seen[0].history) >= 3, TIMEOUT)


def test_stop_says_goodbye(announced, roster):
    container, _ = announced(Greeter)
    roster.discover()
    assert roster.wait_for(by_service("greeter"), TIMEOUT)
    container.stop()
    assert roster.wait_for(lambda seen: not seen, TIMEOUT)


def test_closing_the_announcer_says_goodbye(announced, roster):
    announced(Greeter)
    _, announcer = announced(Web)
    roster.discover()
    assert roster.wait_for(lambda seen: len(seen) == 2, TIMEOUT)
    announcer.close()
    assert roster.wait_for(
        lambda seen: [s.message["service"] for s in seen] == ["greeter"], TIMEOUT
    )


class Login:
    name = "login"

    @rpc
    def check(self, user, *, password="Def4ult-PW", tries: int = 3, **options):
        return user


def test_default_values_are_never_announced(announced, roster):
    announced(Login)
    roster.discover()
    assert roster.wait_for(by_service("login"), TIMEOUT)
    message = roster.instances()[0].message
    assert "Def4ult-PW" not in json.dumps(message)
    check = entrypoint(message, "rpc:check")
    assert check["signature"] == "(user, *, password=..., tries: int = ..., **options)"


def test_an_async_http_entrypoint_is_described(announced, roster):
    announced(Web, WEB_SERVER_ADDRESS="127.0.0.1:0")
    roster.discover()
    assert roster.wait_for(by_service("web"), TIMEOUT)
    hi = entrypoint(roster.instances()[0].message, "http:hi")
    assert hi["detail"] == "GET /hi" and hi["async"] is True
    assert hi["signature"] == "(request)"


def test_a_broker_that_is_unreachable_never_stops_the_service(config, container_factory, caplog):
    container = container_factory(Greeter, config)
    announcer = Announcer({"AMQP_URI": "unknown://nowhere"}, interval=0.05)
    announcer.attach(container)
    container.start()
    announcer.start()
    with ClusterRpcProxy(config, timeout=TIMEOUT) as cluster:
        assert cluster.greeter.hello("ann") == "hello ann"
    # the first failure is the services' to report; later ones warn, once
    wait_until(lambda: "presence: cannot announce the services" in caplog.text, TIMEOUT)
    announcer.close()
    assert caplog.text.count("presence: cannot announce") == 1
