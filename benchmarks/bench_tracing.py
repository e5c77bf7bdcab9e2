"""What tracing costs (docs/architecture.md D27): RPC throughput with
``TRACING`` off and on, in one run.

Two ``nameko run`` processes on a throwaway RabbitMQ vhost serve the same
echo method, one with ``TRACING: false`` (``echo_off``), one with ``TRACING:
true`` (``echo_on``), both with an OpenTelemetry SDK provider whose exporter
drops spans; this process is the client, with the same provider and its
own ``TRACING`` matching the service it calls. Rows: sequential calls, and a
fan-out of ``call_async`` then every result. Repetitions interleave off and
on; the table shows medians, the on/off ratio, and the CPU time per call
of the client (this process) and of the service process (from
``/proc/<pid>/stat``, medians too).

    python benchmarks/bench_tracing.py [--reps 6] [--calls 1000] [--fanout 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

import _traced_service  # noqa: E402, F401 (installs the SDK provider)
from _children import Children  # noqa: E402
from _table import render  # noqa: E402
from bench_rpc import BROKER, throwaway_vhost  # noqa: E402

from nameko.exceptions import UnknownService  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402
from nameko.testing.utils import assert_stops_raising  # noqa: E402

HERE = Path(__file__).parent
SRC = HERE.parent / "src"


Result = dict[tuple[str, bool], list[tuple[float, float, float]]]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def timed(run: Callable[[], float], calls: int, service_pid: int) -> tuple[float, float, float]:
    """(calls/s, client µs per call, service µs per call) of ``run()``."""
    client, service = cpu_seconds(os.getpid()), cpu_seconds(service_pid)
    rate = run()
    client = cpu_seconds(os.getpid()) - client
    service = cpu_seconds(service_pid) - service
    return rate, client / calls * 1e6, service / calls * 1e6


def serve(children: Children, broker: str, tracing: bool, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": broker, "TRACING": tracing}))
    service = "EchoOn" if tracing else "EchoOff"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]))
    log = open(folder / "nameko.log", "wb")  # noqa: SIM115 (the child's, for its life)
    cmd = [sys.executable, "-m", "nameko", "run", "--config", config, f"_traced_service:{service}"]
    return children.spawn(cmd, cwd=folder, stdout=log, stderr=log, env=env).pid


def sequential(proxy: ClusterRpcProxy, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        proxy.echo(i)
    return calls / (time.perf_counter() - start)


def fanout(proxy: ClusterRpcProxy, calls: int) -> float:
    start = time.perf_counter()
    replies = [proxy.echo.call_async(i) for i in range(calls)]
    for reply in replies:
        reply.result()
    return calls / (time.perf_counter() - start)


def measure(args: argparse.Namespace, broker: str, pids: dict[bool, int]) -> Result:
    found: Result = {}
    clients = {
        tracing: ClusterRpcProxy({"AMQP_URI": broker, "TRACING": tracing}, timeout=30)
        for tracing in (False, True)
    }
    try:
        for tracing, client in clients.items():
            proxy = client.start()["echo_on" if tracing else "echo_off"]
            assert_stops_raising(lambda p=proxy: p.echo(0), UnknownService, timeout=60)
            sequential(proxy, 200)  # warm-up
        for _ in range(args.reps):
            for tracing, client in clients.items():
                proxy = client.start()["echo_on" if tracing else "echo_off"]
                for row, run, calls in (
                    ("sequential", sequential, args.calls),
                    ("fan-out", fanout, args.fanout),
                ):
                    result = timed(partial(run, proxy, calls), calls, pids[tracing])
                    found.setdefault((row, tracing), []).append(result)
    finally:
        for client in clients.values():
            client.stop()
    return found


def table(found: Result) -> str:
    rows = [
        ["row", "calls/s off", "on", "on/off", "client µs off", "on", "service µs off", "on"],
    ]
    for row in ("sequential", "fan-out"):
        off, on = (list(zip(*found[row, tracing], strict=True)) for tracing in (False, True))
        (rate_off, *cpu_off), (rate_on, *cpu_on) = (
            [statistics.median(column) for column in runs] for runs in (off, on)
        )
        cells = [row, f"{rate_off:,.0f}", f"{rate_on:,.0f}", f"{rate_on / rate_off:.2f}x"]
        for was, now in zip(cpu_off, cpu_on, strict=True):
            cells += [f"{was:.0f}", f"{now:.0f}"]
        rows.append(cells)
    runs = [
        f"{row} {'on ' if tracing else 'off'}: " + " ".join(f"{r[0]:,.0f}" for r in results)
        for (row, tracing), results in sorted(found.items())
    ]
    return render(rows, lambda i, n: i == 0) + "\ncalls/s per repetition:\n  " + "\n  ".join(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--fanout", type=int, default=2000)
    args = parser.parse_args()
    children = Children()
    with throwaway_vhost() as vhost:
        broker = f"{BROKER}/{vhost}"
        tmp = Path(f"/tmp/bench_tracing_{os.getpid()}")
        try:
            pids = {
                tracing: serve(children, broker, tracing, tmp / ("on" if tracing else "off"))
                for tracing in (False, True)
            }
            print(table(measure(args, broker, pids)))
        finally:
            children.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
