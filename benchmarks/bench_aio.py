"""Benchmark the asyncio side: shimeji's async client and ``async def`` workers
against shimeji's sync fan-out, nameko 2.14.1's ``call_async`` fan-out and
FastStream's RabbitMQ ``request()``, in one run, as ratios.

Rows:

1. N concurrent calls: shimeji's ``nameko.standalone.aio`` client
   (``asyncio.gather``) to an ``async def`` method; shimeji's sync client
   (``call_async`` then ``result()``) to a sync method; nameko 2.14.1's the
   same; FastStream's ``broker.request()`` to an ``async def`` subscriber
   (``_faststream_peer.py``, in its own venv ``.venv-faststream``). Every
   service runs with ``max_workers: 10`` (nameko's default).
2. 500 concurrent one-second naps with ``max_workers: 500``: shimeji
   ``await asyncio.sleep(1)`` (async client), shimeji ``time.sleep(1)`` on
   threads, nameko 2.14.1 ``time.sleep(1)`` on eventlet: wall time, the
   service's peak thread count and its RSS.

    .venv/bin/python benchmarks/bench_aio.py [--quick]

Targets (full mode): row 1, shimeji async >= 5x FastStream and >= 1x shimeji's
sync fan-out. Exits non-zero when a measurement failed; a missed target is
only reported.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly
from _table import render
from bench_rpc import BROKER, BenchError, tail, throwaway_vhost

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENT = HERE / "_aio_client.py"
FASTSTREAM_PEER = HERE / "_faststream_peer.py"
PYTHONS = {
    "shimeji": ROOT / ".venv" / "bin" / "python",
    "nameko": ROOT / ".venv-nameko" / "bin" / "python",
    "faststream": ROOT / ".venv-faststream" / "bin" / "python",
}
CLIENT_TIMEOUT = 300.0
READY_TIMEOUT = 60.0
STOP_GRACE = 8.0
NAP_WORKERS = 500
TARGETS = (("faststream", 5.0), ("sync", 1.0))  # row 1: async / column >= bound


@dataclass(frozen=True)
class Plan:
    name: str
    reps: int
    calls: int  # row 1
    naps: int  # row 2
    warmup: int = 50


QUICK = Plan("quick", 1, calls=1000, naps=500)
DEFAULT = Plan("default", 3, calls=1000, naps=500)

# the columns: (key, label, python, client scenario, service class)
COLUMNS = (
    ("async", "shimeji async", "shimeji", "AsyncService"),
    ("sync", "shimeji sync", "shimeji", "SyncService"),
    ("nameko", "nameko 2.14.1", "nameko", "SyncService"),
    ("faststream", "FastStream", "faststream", ""),
)


@dataclass
class Service:
    column: str
    name: str  # RPC service name (FastStream: its queue)
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Bench:
    plan: Plan
    broker: str
    tmp: Path
    children: Children
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: str, column: str, value: float) -> None:
        self.samples.setdefault(row, {}).setdefault(column, []).append(value)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAILED: {message}", file=sys.stderr, flush=True)


# --- processes --------------------------------------------------------------------------


def spawn_service(bench: Bench, column: str, python: str, cls: str, workers: int) -> Service:
    suffix = f"_{column}{workers}"
    log = bench.tmp / f"{column}{workers}.log"
    if column == "faststream":
        cmd: list[Any] = [PYTHONS[python], FASTSTREAM_PEER, "serve", "--broker", bench.broker]
        cmd += ["--queue", f"faststream_echo{suffix}"]
        name = f"faststream_echo{suffix}"
    else:
        config = bench.tmp / f"config{workers}.yaml"
        config.write_text(f"AMQP_URI: '{bench.broker}'\nmax_workers: {workers}\n")
        cmd = [PYTHONS[python], "-m", "nameko", "run", "--config", config]
        cmd += ["--broker", bench.broker, f"_aio_service:{cls}"]
        name = ("aio_async" if cls == "AsyncService" else "aio_sync") + suffix
    env = {**os.environ, "BENCH_SUFFIX": suffix}
    proc = bench.children.spawn_logged(cmd, log, env=env, cwd=HERE)
    return Service(column, name, proc, log)


def client_cmd(bench: Bench, service: Service, scenario: str, calls: int) -> list[Any]:
    if service.column == "faststream":
        cmd: list[Any] = [PYTHONS["faststream"], FASTSTREAM_PEER, "client"]
        cmd += ["--broker", bench.broker, "--queue", service.name, "--calls", calls]
        return cmd + ["--concurrency", calls, "--warmup", bench.plan.warmup]
    python = PYTHONS["nameko" if service.column == "nameko" else "shimeji"]
    cmd = [python, CLIENT, "--scenario", scenario, "--broker", bench.broker]
    return cmd + ["--service", service.name, "--calls", calls, "--warmup", bench.plan.warmup]


def run_client(bench: Bench, cmd: list[Any], watch: Service | None = None) -> dict[str, Any]:
    """Run a client to completion; while it runs, sample ``watch``'s thread count."""
    proc = bench.children.spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    peak = 0
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while proc.poll() is None and watch is not None and time.monotonic() < deadline:
        peak = max(peak, proc_status(watch.proc.pid, "Threads"))
        time.sleep(0.02)  # a sampling interval, not a wait for an event
    try:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        bench.children.stop(proc)
        raise BenchError(f"client timed out: {cmd[1:4]}") from None
    if proc.returncode != 0 or not out.strip():
        raise BenchError(f"client exited {proc.returncode}: {cmd[1:4]}\n{tail(err)}")
    result = json.loads(out.splitlines()[-1])
    if watch is not None:
        result["peak_threads"] = peak
    return result


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def wait_ready(bench: Bench, service: Service) -> None:
    """Until one call (FastStream: one request) gets its reply."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if service.proc.poll() is not None:
            raise BenchError(f"{service.name} exited\n{tail(service.log)}")
        try:
            if service.column == "faststream":
                log = service.log.read_bytes()
                if b"ready" in log:
                    return
                raise BenchError("not ready yet")
            run_client(bench, client_cmd(bench, service, "fanout", 1)[:-2] + ["--warmup", 0])
            return
        except BenchError:
            if time.monotonic() > deadline:
                raise BenchError(f"{service.name} did not answer\n{tail(service.log)}") from None
            time.sleep(0.2)  # a retry interval while the service starts


def start_services(bench: Bench) -> dict[tuple[str, int], Service]:
    found: dict[tuple[str, int], Service] = {}
    for key, _label, python, cls in COLUMNS:
        if not PYTHONS[python].exists():
            bench.notes.append(
                f"{key}: no {PYTHONS[python].parent.parent.name} (scripts/bootstrap)"
            )
            continue
        for workers in (10, NAP_WORKERS):
            if key == "faststream" and workers != 10:
                continue
            found[(key, workers)] = spawn_service(bench, key, python, cls, workers)
    for where, service in list(found.items()):
        try:
            wait_ready(bench, service)
        except BenchError as exc:
            bench.fail(str(exc))
            del found[where]
    return found


# --- measuring --------------------------------------------------------------------------


def measure(bench: Bench, services: dict[tuple[str, int], Service]) -> None:
    plan = bench.plan
    for rep in range(plan.reps):
        columns = [c for c in COLUMNS if (c[0], 10) in services]
        for key, _label, _python, _cls in columns if rep % 2 == 0 else columns[::-1]:
            service = services[(key, 10)]
            scenario = "aio" if key == "async" else "fanout"
            print(f"  rep {rep + 1}/{plan.reps} {plan.calls} concurrent: {key}", flush=True)
            try:
                result = run_client(bench, client_cmd(bench, service, scenario, plan.calls))
            except BenchError as exc:
                bench.fail(f"{key}: {exc}")
                continue
            bench.add("rate", key, result["calls_per_s"])
            bench.add("p99", key, result["p99_ms"])
        for key in ("async", "sync", "nameko"):
            if (key, NAP_WORKERS) in services:
                measure_naps(bench, services[(key, NAP_WORKERS)], key, rep)


def measure_naps(bench: Bench, service: Service, key: str, rep: int) -> None:
    print(f"  rep {rep + 1}/{bench.plan.reps} {bench.plan.naps} naps: {key}", flush=True)
    cmd = client_cmd(bench, service, "nap", bench.plan.naps)
    if key == "async":
        cmd.append("--aio")
    try:
        result = run_client(bench, cmd, watch=service)
    except BenchError as exc:
        bench.fail(f"{key} naps: {exc}")
        return
    bench.add("nap_wall", key, result["wall_s"])
    bench.add("nap_threads", key, result["peak_threads"])
    bench.add("nap_rss", key, proc_status(service.proc.pid, "VmRSS") / 1024)


# --- report -----------------------------------------------------------------------------

ROWS = (
    ("rate", "1. {calls} concurrent calls", "calls/s", True),
    ("p99", "   p99 latency (batch start to reply)", "ms", False),
    ("nap_wall", "2. {naps} x one-second nap, max_workers 500: wall", "s", False),
    ("nap_threads", "   peak threads of the service", "threads", False),
    ("nap_rss", "   RSS of the service after", "MiB", False),
)


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if unit in ("calls/s", "threads") else f"{value:,.2f}"


def ratio_cell(ours: float | None, theirs: float | None, bound: float | None) -> str:
    if ours is None or not theirs:
        return "n/a"
    ratio = ours / theirs
    verdict = "" if bound is None else (" met" if ratio >= bound else " MISSED")
    return f"{ratio:.2f}x{verdict}"


def format_table(bench: Bench, judge: bool) -> str:
    labels = [label for _k, label, _p, _c in COLUMNS]
    head = ["row", "unit", *labels, "async/FastStream", "async/sync", "async/nameko"]
    lines = [head]
    for key, label, unit, higher in ROWS:
        cells = {c[0]: median(bench.samples.get(key, {}).get(c[0])) for c in COLUMNS}
        line = [label.format(calls=bench.plan.calls, naps=bench.plan.naps), unit]
        line += [fmt(cells[c[0]], unit) for c in COLUMNS]
        bounds = dict(TARGETS) if (judge and key == "rate") else {}
        for other in ("faststream", "sync", "nameko"):
            ours, theirs = cells["async"], cells[other]
            if not higher and ours and theirs:  # lower is better: show theirs / ours
                ours, theirs = theirs, ours
            line.append(ratio_cell(ours, theirs, bounds.get(other)))
        lines.append(line)
    return render(lines, lambda i, _n: i < 2)


def format_runs(bench: Bench) -> str:
    lines = ["all runs (in repetition order):"]
    for key, label, unit, _higher in ROWS:
        cells = [
            f"{name} {', '.join(fmt(v, unit) for v in bench.samples.get(key, {}).get(col, [])) or '-'}"
            for col, name, _p, _c in COLUMNS
        ]
        lines.append(
            f"  {label.format(calls=bench.plan.calls, naps=bench.plan.naps).strip()}: "
            + "; ".join(cells)
        )
    return "\n".join(lines)


def versions() -> str:
    found = []
    for key, python in PYTHONS.items():
        if not python.exists():
            continue
        package = {"shimeji": "shimeji", "nameko": "nameko", "faststream": "faststream"}[key]
        code = f"from importlib.metadata import version as v; print(v('{package}'))"
        out = subprocess.run([python, "-c", code], capture_output=True, text=True)
        found.append(f"{package} {out.stdout.strip() or '?'}")
    return ", ".join(found)


# --- main -------------------------------------------------------------------------------


def run(args: argparse.Namespace, vhost: str, children: Children, tmp: Path) -> int:
    plan = QUICK if args.quick else DEFAULT
    bench = Bench(plan, f"{BROKER}/{vhost}", tmp, children)
    started = time.perf_counter()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"shimeji asyncio benchmark -- {plan.name} mode: {plan.reps} rep(s), medians shown")
    print(f"  {versions()}; vhost {vhost}; {os.cpu_count()} CPUs; load average {load}", flush=True)
    services = start_services(bench)
    measure(bench, services)
    print()
    print(format_table(bench, judge=not args.quick))
    if plan.reps > 1:
        print(format_runs(bench))
    for note in bench.notes:
        print(f"note: {note}")
    if args.quick:
        print("targets: not judged in quick mode (one repetition)")
    print(f"measured in {time.perf_counter() - started:.1f} s")
    missing = [c[0] for c in COLUMNS[:3] if not bench.samples.get("rate", {}).get(c[0])]
    if bench.failures or missing:
        print(f"FAILED: {len(bench.failures)} error(s); no figure for: {', '.join(missing) or '-'}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition (CI)")
    args = parser.parse_args(argv)
    children = Children(signal.SIGTERM, STOP_GRACE)

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="bench_aio_") as tmp, throwaway_vhost() as vhost:
            return run(args, vhost, children, Path(tmp))

    return run_cleanly(body, children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
