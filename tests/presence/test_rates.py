"""Rates and latency from successive announcements (pure)."""

from __future__ import annotations

import time

from nameko._presence.listing import format_uptime
from nameko._presence.rates import cluster_view, percentile_ms
from nameko._presence.roster import Seen
from nameko._presence.wire import LATENCY_BOUNDS_MS, decode, encode

EMPTY = [0] * (len(LATENCY_BOUNDS_MS) + 1)


def stats(calls, errors=0, latency=0.0, bucket=2, in_flight=0):
    buckets = list(EMPTY)
    buckets[bucket] = calls
    return {
        "calls": calls,
        "errors": errors,
        "latency_sum": latency,
        "buckets": buckets,
        "in_flight": in_flight,
    }


def message(instance, uptime, hello, state="running"):
    return {
        "service": "greeter",
        "instance": instance,
        "host": "h",
        "pid": 1,
        "uptime": uptime,
        "state": state,
        "max_workers": 10,
        "entrypoints": [
            {"key": "rpc:hello", "type": "rpc", "name": "hello", "signature": "()", "stats": hello}
        ],
    }


def history(*samples):
    return [(uptime, {"rpc:hello": s}) for uptime, s in samples]


def test_rates_add_up_over_instances_and_latency_comes_from_the_window():
    a = history((10, stats(100, 1, 0.5)), (12, stats(300, 3, 1.5)))  # 100/s, 1 err/s, 5 ms
    b = history((5, stats(0)), (7, stats(100, 0, 0.5, bucket=3)))  # 50/s, 5 ms
    [service] = cluster_view(
        [
            (message("a", 12, stats(300, 3, 1.5)), a, False),
            (message("b", 7, stats(100, 0, 0.5)), b, False),
        ]
    )
    [hello] = service["entrypoints"]
    assert hello["rate"] == 150.0 and hello["error_rate"] == 1.0
    assert hello["mean_ms"] == 5.0  # (1.0 + 0.5) s over 300 calls
    assert hello["calls"] == 400 and hello["errors"] == 3
    assert hello["p95_ms"] == LATENCY_BOUNDS_MS[3]  # 200 window calls in bucket 2, 100 in 3
    assert service["state"] == "running"


def test_one_announcement_has_totals_but_no_rates():
    [service] = cluster_view([(message("a", 3, stats(7)), history((3, stats(7))), False)])
    [hello] = service["entrypoints"]
    assert (hello["calls"], hello["rate"], hello["mean_ms"], hello["p95_ms"]) == (
        7,
        0.0,
        None,
        None,
    )


def test_a_silent_instance_degrades_its_service():
    [service] = cluster_view([(message("a", 3, None), [], True)])
    assert service["instances"][0]["state"] == "silent" and service["state"] == "degraded"


def test_percentile_at_bucket_bounds():
    assert percentile_ms(EMPTY, 0.95) is None
    overflow = list(EMPTY)
    overflow[-1] = 1
    assert percentile_ms(overflow, 0.5) == LATENCY_BOUNDS_MS[-1] * 2


def test_uptime_and_wire():
    assert [format_uptime(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m 5s", "1h 1m", "1d 1h"]
    assert decode(encode({"service": "s", "instance": "i"})) == {"service": "s", "instance": "i"}
    assert (
        decode(b"not json") is None and decode(b"[]") is None and decode(b'{"service": 1}') is None
    )


def test_an_instance_is_silent_after_three_of_its_intervals():
    message = {"service": "s", "instance": "i", "interval": 2.0}
    assert not Seen(message, time.monotonic() - 5).is_silent()  # 5 s < 3 x 2 s
    assert Seen(message, time.monotonic() - 7).is_silent()
    assert Seen(message, time.monotonic() - 2).is_silent(period=0.5)  # the dashboard asks often
