"""What tracing costs (docs/architecture.md D27): RPC throughput with
``TRACING`` off and on, in one run.

Two ``nameko run`` processes on a throwaway RabbitMQ vhost serve the same
echo method, one with ``TRACING: false`` (``echo_off``), one with ``TRACING:
true`` (``echo_on``), both with an OpenTelemetry SDK provider whose exporter
drops spans; this process is the client, with the same provider and its
own ``TRACING`` matching the service it calls. Rows: sequential calls, and a
fan-out of ``call_async`` then every result. Repetitions interleave off and
on; the table shows medians and the on/off ratio.

    python benchmarks/bench_tracing.py [--reps 6] [--calls 1000] [--fanout 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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


def serve(children: Children, broker: str, tracing: bool, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": broker, "TRACING": tracing}))
    service = "EchoOn" if tracing else "EchoOff"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]))
    log = open(folder / "nameko.log", "wb")  # noqa: SIM115 (the child's, for its life)
    cmd = [sys.executable, "-m", "nameko", "run", "--config", config, f"_traced_service:{service}"]
    children.spawn(cmd, cwd=folder, stdout=log, stderr=log, env=env)


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


def measure(args: argparse.Namespace, broker: str) -> dict[tuple[str, bool], list[float]]:
    found: dict[tuple[str, bool], list[float]] = {}
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
                found.setdefault(("sequential", tracing), []).append(sequential(proxy, args.calls))
                found.setdefault(("fan-out", tracing), []).append(fanout(proxy, args.fanout))
    finally:
        for client in clients.values():
            client.stop()
    return found


def table(found: dict[tuple[str, bool], list[float]]) -> str:
    rows = [["row", "off calls/s", "on calls/s", "on/off", "off runs", "on runs"]]
    for row in ("sequential", "fan-out"):
        off, on = found[row, False], found[row, True]
        rows.append(
            [
                row,
                f"{statistics.median(off):,.0f}",
                f"{statistics.median(on):,.0f}",
                f"{statistics.median(on) / statistics.median(off):.2f}x",
                " ".join(f"{v:,.0f}" for v in off),
                " ".join(f"{v:,.0f}" for v in on),
            ]
        )
    return render(rows, lambda i, n: i == 0)


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
            for tracing in (False, True):
                serve(children, broker, tracing, tmp / ("on" if tracing else "off"))
            print(table(measure(args, broker)))
        finally:
            children.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
