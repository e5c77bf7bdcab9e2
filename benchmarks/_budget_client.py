"""Client side of ``budget.py``'s events and HTTP rows: ONE scenario, ONE JSON line.

- ``events``: ``--calls`` events from the standalone ``event_dispatcher``
  (``pipeline=True``, one ``flush()``) claiming to come from ``events_source``;
  done when ``events_sink.count()`` (polled every 10 ms) reaches them all.
- ``http``: ``--calls`` sequential ``GET /echo/<i>`` on one keep-alive connection
  to ``--port`` (the client is ``http.client``, not shimeji: its CPU is reported,
  not budgeted).

``--cpu-pids`` as in ``_bench_client.py``: CPU per call of each named process over
the measured part.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from typing import Any

from _bench_client import CpuMeter

POLL = 0.01  # seconds between sink.count() polls


def run_events(args: argparse.Namespace, meter: CpuMeter) -> dict[str, Any]:
    from nameko.standalone.events import event_dispatcher
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": args.broker}
    with ClusterRpcProxy(config, timeout=30) as rpc:
        sink = rpc["events_sink"]
        dispatcher = event_dispatcher(config, pipeline=True)
        for seq in range(args.warmup):
            dispatcher("events_source", "tick", {"seq": -1 - seq})
        dispatcher.flush()
        deadline = time.monotonic() + 30
        while sink.count() < args.warmup:
            if time.monotonic() > deadline:
                raise RuntimeError("the sink did not get the warm-up events")
            time.sleep(POLL)
        sink.reset()
        meter.start()
        start = time.perf_counter()
        for seq in range(args.calls):
            dispatcher("events_source", "tick", {"seq": seq})
        dispatcher.flush()
        while sink.count() < args.calls:
            if time.monotonic() > deadline + 30:
                raise RuntimeError("the sink did not get every event")
            time.sleep(POLL)
        elapsed = time.perf_counter() - start
        cpu = meter.stop(args.calls)
    return {**cpu, "calls_per_s": args.calls / elapsed}


def run_http(args: argparse.Namespace, meter: CpuMeter) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)

    def get(i: int) -> None:
        conn.request("GET", f"/echo/{i}")
        response = conn.getresponse()
        if response.read() != str(i).encode() or response.status != 200:
            raise AssertionError(f"GET /echo/{i}: {response.status}")

    for i in range(args.warmup):
        get(i)
    meter.start()
    start = time.perf_counter()
    for i in range(args.calls):
        get(i)
    elapsed = time.perf_counter() - start
    cpu = meter.stop(args.calls)
    conn.close()
    return {**cpu, "calls_per_s": args.calls / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("events", "http"), required=True)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--cpu-pids", default="")
    args = parser.parse_args(argv)
    run = run_events if args.scenario == "events" else run_http
    print(json.dumps(run(args, CpuMeter(args.cpu_pids))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
