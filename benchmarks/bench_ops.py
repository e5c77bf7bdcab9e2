"""What the operations endpoint costs: RPC throughput with metrics on (and
tracing on, once that branch is merged) against the same service without.

Three ``nameko run`` processes host the same echo service (``_bench_service.py``)
on a throwaway vhost: *baseline* (no ops), *metrics on* (``OPS_ADDRESS`` set,
and this script scrapes its ``/metrics`` every second throughout) and *tracing
on* (``TRACING: true``; where that key does nothing yet, the row measures the
baseline again, which shows the run-to-run spread). The same client
(``_bench_client.py``, a process of its own) measures sequential calls and a
``call_async`` fan-out against each, the rows interleaved (the order rotates
every repetition); the table shows medians and ratios to the baseline, and
the service's CPU per call (from /proc).

    .venv/bin/python benchmarks/bench_ops.py [--quick] [--json FILE]

Target: metrics cost under 5% of RPC throughput. Reported, not
asserted; ``--quick`` prints figures without pass/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly
from _table import render
from bench_rpc import BenchError, throwaway_vhost

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "_bench_client.py"
BROKER = "amqp://guest:guest@127.0.0.1:5672"
MAX_WORKERS = 10
CALL_TIMEOUT = 30.0
CLIENT_TIMEOUT = 600.0
TARGET = 0.05  # metrics may cost at most 5% of throughput

ROWS: list[tuple[str, dict[str, Any]]] = [
    ("baseline", {}),
    ("metrics on", {"OPS_ADDRESS": "127.0.0.1:0"}),
    # with an OpenTelemetry SDK provider whose exporter drops spans (_traced_service.py)
    ("tracing on", {"TRACING": True}),
]
TRACING_ROW = 2


class Service:
    """One ``nameko run`` of the echo service with its row's extra config."""

    def __init__(self, children: Children, tmp: Path, broker: str, index: int, extra: dict) -> None:
        self.suffix = f"_ops{index}_{secrets.token_hex(2)}"
        self.name = "bench_echo" + self.suffix
        config = tmp / f"config{index}.yaml"
        lines = [f"AMQP_URI: '{broker}'", f"max_workers: {MAX_WORKERS}"]
        lines += [f"{key}: {json.dumps(value)}" for key, value in extra.items()]
        config.write_text("\n".join(lines) + "\n")
        self.log = tmp / f"service{index}.log"
        env = {**os.environ, "BENCH_SUFFIX": self.suffix}
        if index == TRACING_ROW:
            env["BENCH_TRACING_SDK"] = "1"
        cmd = [sys.executable, "-m", "nameko", "run", "--config", config, "_bench_service:EchoService"]  # fmt: skip
        self.proc = children.spawn_logged(cmd, self.log, env=env, cwd=HERE)

    def ops_port(self) -> int:
        deadline = time.monotonic() + CALL_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(r"operations endpoint on http://[^ ]+:(\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)  # polling a log file: nothing to wait on
        raise BenchError(f"no operations endpoint in {self.log}:\n{self.log.read_text()[-2000:]}")


class Scraper:
    """GET /metrics every second, as Prometheus would, on its own thread."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.scrapes = self.failures = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="scraper", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
                self.scrapes += 1
            except OSError:
                self.failures += 1


def wait_serving(broker: str, service: str) -> None:
    from nameko.exceptions import UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    deadline = time.monotonic() + CALL_TIMEOUT
    with ClusterRpcProxy({"AMQP_URI": broker}, timeout=CALL_TIMEOUT) as rpc:
        while True:
            try:
                rpc[service].echo(0)
                return
            except UnknownService:
                if time.monotonic() > deadline:
                    raise BenchError(f"{service} did not start") from None
                time.sleep(0.1)  # the service is starting: retry, as wait_until_serving does


def run_client(broker: str, service: Service, scenario: str, calls: int) -> dict[str, Any]:
    cmd = [sys.executable, CLIENT, "--scenario", scenario, "--broker", broker]
    cmd += ["--service", service.name, "--timeout", str(CALL_TIMEOUT), "--calls", str(calls)]
    cmd += ["--warmup", "50", "--cpu-pids", f"service={service.proc.pid}"]
    done = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT)
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(f"{scenario} client exited {done.returncode}: {done.stderr[-2000:]!r}")
    return json.loads(done.stdout.splitlines()[-1])


def measure(broker: str, services: list[Service], reps: int, plan: dict[str, int]) -> dict:
    results: dict[str, dict[str, list[float]]] = {
        name: {key: [] for key in ("seq", "fanout", "seq_cpu", "fanout_cpu")} for name, _ in ROWS
    }
    for rep in range(reps):
        order = list(range(len(ROWS)))
        order = order[rep % len(order) :] + order[: rep % len(order)]
        for index in order:
            name, service = ROWS[index][0], services[index]
            for scenario in ("seq", "fanout"):
                out = run_client(broker, service, scenario, plan[scenario])
                results[name][scenario].append(out["calls_per_s"])
                results[name][f"{scenario}_cpu"].append(out["cpu_us_service"])
        print(f"  repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    return {
        name: {k: statistics.median(v) for k, v in row.items()} for name, row in results.items()
    }


def report(medians: dict[str, dict[str, float]], quick: bool, scraper: Scraper) -> str:
    base = medians["baseline"]
    rows = [["row", "seq calls/s", "ratio", "fan-out calls/s", "ratio", "service µs/call seq", "fan-out"]]  # fmt: skip
    for name, _ in ROWS:
        m = medians[name]
        rows.append([
            name,
            f"{m['seq']:,.0f}", f"{m['seq'] / base['seq']:.3f}",
            f"{m['fanout']:,.0f}", f"{m['fanout'] / base['fanout']:.3f}",
            f"{m['seq_cpu']:.0f}", f"{m['fanout_cpu']:.0f}",
        ])  # fmt: skip
    text = render(rows, lambda i, n: i == 0)
    metrics = medians["metrics on"]
    cost = 1 - min(metrics["seq"] / base["seq"], metrics["fanout"] / base["fanout"])
    text += f"\n\nmetrics on: scraped {scraper.scrapes} times ({scraper.failures} failed)"
    verdict = "" if quick else (" -> target met" if cost < TARGET else " -> target MISSED")
    text += f"\nmetrics overhead (worst of the two rows): {cost * 100:.1f}% (target < 5%){verdict}"
    return text


def observer_cost(pairs: int) -> str:
    """Per worker, what recording costs: our observer (start + end) against
    the same figures kept with prometheus_client (a counter, two histograms,
    a gauge up and down, all labelled), on this thread, nothing contended."""
    from types import SimpleNamespace

    from nameko._ops.metrics import LATENCY_BUCKETS, QUEUE_WAIT_BUCKETS, WorkerMetrics
    from nameko.rpc import Rpc

    entrypoint = Rpc()
    entrypoint.method_name = "echo"
    container = SimpleNamespace(entrypoints=[entrypoint], service_name="svc", max_workers=10)
    observer = WorkerMetrics(container)
    ctx = SimpleNamespace(entrypoint=entrypoint, sent_at=int(time.time()))
    start = time.perf_counter()
    for _ in range(pairs):
        observer.worker_started(ctx)
        observer.worker_finished(ctx, None, None)
    ours = (time.perf_counter() - start) / pairs * 1e6
    try:
        import prometheus_client as prom
    except ImportError:
        return f"observer cost per worker: ours {ours:.2f} µs (prometheus_client not installed)"
    registry = prom.CollectorRegistry()
    labels = ("service", "entrypoint", "type")
    calls = prom.Counter("c", "c", labels, registry=registry)
    latency = prom.Histogram("l", "l", labels, buckets=LATENCY_BUCKETS, registry=registry)
    wait = prom.Histogram("w", "w", labels, buckets=QUEUE_WAIT_BUCKETS, registry=registry)
    in_flight = prom.Gauge("g", "g", ("service",), registry=registry)
    start = time.perf_counter()
    for _ in range(pairs):
        t0 = time.perf_counter()
        in_flight.labels("svc").inc()
        wait.labels("svc", "echo", "rpc").observe(max(0.0, time.time() - ctx.sent_at))
        in_flight.labels("svc").dec()
        calls.labels("svc", "echo", "rpc").inc()
        latency.labels("svc", "echo", "rpc").observe(time.perf_counter() - t0)
    theirs = (time.perf_counter() - start) / pairs * 1e6
    return (
        f"observer cost per worker: ours {ours:.2f} µs, "
        f"prometheus_client {theirs:.2f} µs ({theirs / ours:.1f}x)"
    )


def bench(args: argparse.Namespace, children: Children) -> int:
    reps = 2 if args.quick else 6
    plan = {"seq": 300, "fanout": 1000} if args.quick else {"seq": 2000, "fanout": 3000}
    with throwaway_vhost("bench_ops") as vhost, tempfile.TemporaryDirectory() as tmp:
        broker = f"{BROKER}/{vhost}"
        services = [Service(children, Path(tmp), broker, i, extra) for i, (_, extra) in enumerate(ROWS)]  # fmt: skip
        for service in services:
            wait_serving(broker, service.name)
        scraper = Scraper(services[1].ops_port())
        medians = measure(broker, services, reps, plan)
        scraper.stopped.set()
        print(f"bench_ops: {reps} interleaved repetitions, medians; seq {plan['seq']} calls, fan-out {plan['fanout']}")  # fmt: skip
        print(report(medians, args.quick, scraper))
        print(observer_cost(20_000 if args.quick else 200_000))
        if args.json:
            Path(args.json).write_text(json.dumps(medians, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repetitions")
    parser.add_argument("--json", help="also write the medians to this file")
    args = parser.parse_args(argv)
    children = Children()
    return run_cleanly(lambda: bench(args, children), children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
