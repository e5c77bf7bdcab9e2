"""The pieces of the operations endpoint on their own."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nameko._ops.address import parse_address
from nameko._ops.exposition import Histogram, Writer
from nameko._ops.metrics import entrypoint_type
from nameko.exceptions import ConfigurationError


@pytest.mark.parametrize(
    "given, expected",
    [
        (9100, ("127.0.0.1", 9100)),
        ("9100", ("127.0.0.1", 9100)),
        (":9100", ("127.0.0.1", 9100)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("[::1]:0", ("::1", 0)),
    ],
)
def test_addresses(given, expected):
    assert parse_address(given) == expected


@pytest.mark.parametrize("given", ["", "host", "host:port", "1:70000", "-1"])
def test_bad_addresses_say_what_is_expected(given):
    with pytest.raises(ConfigurationError, match=r"OPS_ADDRESS must be \[host:\]port"):
        parse_address(given)


def test_the_text_format_reads_back_with_prometheus_client():
    histogram = Histogram((0.1, 1.0))
    for observed in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(observed)
    out = Writer()
    out.family("x_total", "counter", "a counter", [({"error": 'say "hi"\\\n'}, 3)])
    out.histogram("y_seconds", "a histogram", [({"service": "s"}, histogram)])
    families = {f.name: f for f in text_string_to_metric_families(out.text())}
    (counter,) = families["x"].samples
    assert counter.labels == {"error": 'say "hi"\\\n'} and counter.value == 3
    buckets = {s.labels["le"]: s.value for s in families["y_seconds"].samples if "le" in s.labels}
    assert buckets == {"0.1": 2, "1.0": 3, "+Inf": 4}  # a value on a bound counts in it
    count = [s.value for s in families["y_seconds"].samples if s.name == "y_seconds_count"]
    assert count == [4]


def test_entrypoint_types():
    from nameko.events import EventHandler
    from nameko.messaging import Consumer
    from nameko.rpc import Rpc
    from nameko.timer import Timer
    from nameko.web.handlers import HttpRequestHandler

    assert entrypoint_type(Rpc()) == "rpc"
    assert entrypoint_type(EventHandler("a", "b")) == "event"
    assert entrypoint_type(Consumer("q")) == "consume"
    assert entrypoint_type(Timer(1)) == "timer"
    assert entrypoint_type(HttpRequestHandler("GET", "/")) == "http"


@pytest.mark.parametrize("host, client", [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")])
def test_the_server_answers_and_closes(host, client):
    import socket
    import urllib.request

    from nameko._ops.server import OpsServer

    if ":" in host and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    server = OpsServer(host, 0, {"/x": lambda: (200, "text/plain", b"ok")})
    port = server.address[1]
    try:
        with urllib.request.urlopen(f"http://{client}:{port}/x?probe=1", timeout=5) as response:
            assert response.read() == b"ok" and response.headers["Content-Length"] == "2"
    finally:
        server.close()  # wakes the blocked accept: no polling
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()
