"""nameko-statsd 0.1.4, unchanged, on shimeji (pip install --no-deps).

`StatsD(key)` reads ``container.config['STATSD'][key]`` in ``setup()`` and
injects a lazy `statsd` client per worker. Its ``@statsd.timer(...)``
decorator is made from the *declaration* on the class, and finds the
worker's client with ``getattr(worker, self.attr_name)``: that works only
because `DependencyProvider.bind` sets ``attr_name`` on the prototype too
(SPEC 2.1). The test receives the UDP packets on a local socket.
"""

from __future__ import annotations

import re
import socket
import time

import nameko_statsd
import pytest

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.timer import timer
from tests.compat.ext_support import TIMEOUT, assert_installed_on_shimeji

TIMING = re.compile(r"^shimeji\.hello_time:(\d+\.\d+)\|ms$")


class Greeter:
    name = "greeter"

    statsd = nameko_statsd.StatsD("local")
    quiet = nameko_statsd.StatsD("off")  # enabled: false, TCP: never connects

    @rpc
    @statsd.timer("hello_time")
    def hello(self, name):
        self.statsd.incr("hello_calls")
        self.statsd.gauge("name_length", len(name))
        self.quiet.incr("never_sent")
        with self.quiet.timer("never_timed"):
            pass
        return f"Hello, {name}!"

    @rpc
    def clients(self):
        return [type(self.statsd).__name__, self.statsd.enabled, self.quiet.enabled]


class Ticker:
    name = "ticker"

    statsd = nameko_statsd.StatsD("local")

    @timer(interval=0.05)
    @statsd.timer("tick_time", rate=1)
    def tick(self):
        with self.statsd.pipeline() as pipe:
            pipe.incr("ticks")
            pipe.set("tickers", "one")


@pytest.fixture
def receiver():
    """A statsd server: a UDP socket on a free local port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT)
    yield sock
    sock.close()


def receive(sock: socket.socket, count: int) -> list[str]:
    """The next ``count`` metric lines (a pipeline sends several in one packet)."""
    lines: list[str] = []
    while len(lines) < count:
        data, _ = sock.recvfrom(65536)
        lines.extend(data.decode().splitlines())
    return lines


def statsd_config(sock: socket.socket) -> dict:
    return {
        "STATSD": {
            "local": {
                "enabled": True,
                "protocol": "udp",
                "host": "127.0.0.1",
                "port": sock.getsockname()[1],
                "prefix": "shimeji",
            },
            "off": {"enabled": False, "protocol": "TCP", "host": "127.0.0.1", "port": 9},
        }
    }


def test_installed_unchanged_on_shimeji():
    assert_installed_on_shimeji("nameko-statsd", "0.1.4")


@pytest.mark.rabbit
def test_timer_times_a_real_rpc_entrypoint(container_factory, rabbit_config, receiver):
    config = {**rabbit_config, **statsd_config(receiver)}
    container = container_factory(Greeter, config)
    # bind() named the declarations: the decorator needs the class's own one
    assert (Greeter.statsd.attr_name, Greeter.quiet.attr_name) == ("statsd", "quiet")
    container.start()
    provider = next(d for d in container.dependencies if d.attr_name == "statsd")
    assert provider.config["port"] == receiver.getsockname()[1]  # read in setup()

    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        assert proxy.greeter.clients() == ["LazyClient", True, False]
        started = time.perf_counter()
        assert proxy.greeter.hello("ann") == "Hello, ann!"
        elapsed_ms = (time.perf_counter() - started) * 1000
        lines = receive(receiver, 3)
        assert lines[:2] == ["shimeji.hello_calls:1|c", "shimeji.name_length:3|g"]
        timing = TIMING.match(lines[2])
        assert timing, lines[2]  # sent when the method returned, before the reply
        assert 0 <= float(timing.group(1)) <= elapsed_ms

        assert proxy.greeter.hello("bob") == "Hello, bob!"
        assert len(receive(receiver, 3)) == 3
    container.stop()
    # the disabled dependency sent nothing: nothing else is waiting
    receiver.settimeout(0)
    with pytest.raises(BlockingIOError):
        receiver.recvfrom(65536)


def test_timer_entrypoint_and_pipeline(container_factory, memory_config, receiver):
    """A @timer entrypoint, timed, sending a pipeline (memory broker: no AMQP)."""
    container = container_factory(Ticker, {**memory_config, **statsd_config(receiver)})
    container.start()
    lines = receive(receiver, 6)  # two ticks at least: 3 lines each
    container.stop()
    assert lines[:2] == ["shimeji.ticks:1|c", "shimeji.tickers:one|s"]
    assert re.match(r"^shimeji\.tick_time:\d+\.\d+\|ms$", lines[2]), lines[2]
    assert lines[3:6] == [*lines[:2], lines[5]]
