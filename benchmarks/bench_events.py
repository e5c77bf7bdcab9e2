"""Benchmark events end to end, shimeji against nameko 2.14.1 in one run, as ratios.

Each implementation hosts ``_events_service.py`` in two ``nameko run``
processes of its own venv (the source, with an ``EventDispatcher``, and the
sink, with a ``SERVICE_POOL`` event handler) in a throwaway RabbitMQ vhost;
``_events_client.py`` drives them under the same implementation's interpreter.
Scenarios run interleaved (the order flips every time) and repeated; the table
shows medians. CPU per event is the source's and the sink's utime+stime (from
``/proc/<pid>/stat``) over a scenario, divided by its events.

    .venv/bin/python benchmarks/bench_events.py [--quick]

Exits non-zero when a measurement failed (events lost, a service did not start);
a missed target is only reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
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
from bench_rpc import (
    BROKER,
    IMPLS,
    MAX_WORKERS,
    BenchError,
    Impl,
    ordered,
    rss_mib,
    tail,
    throwaway_vhost,
    write_config,
)

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "_events_client.py"
SERVICE_MODULE = "_events_service"
CLIENT_TIMEOUT = 300.0  # seconds, per client process
STOP_GRACE = 8.0  # seconds between SIGTERM and SIGKILL
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET = 3.0  # shimeji / nameko, events/s end to end
LABELS = {"shimeji": "shimeji", "nameko": "nameko 2.14.1"}


@dataclass(frozen=True)
class Plan:
    name: str
    reps: int
    rounds: int  # worker scenario: emit calls
    batch: int  # worker scenario: events per emit
    events: int  # standalone scenario
    warmup: int = 50
    sequential: bool = False  # worker scenario: emit calls one after the other


QUICK = Plan("quick", 1, rounds=20, batch=100, events=2000)
DEFAULT = Plan("default", 3, rounds=40, batch=100, events=4000)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: bool = False  # ratio >= TARGET


def emits(plan: Plan) -> str:
    return "sequential" if plan.sequential else "call_async"


def make_rows(plan: Plan) -> tuple[Row, ...]:
    total = plan.rounds * plan.batch
    return (
        Row(
            "worker_e2e",
            f"1. worker: {plan.rounds} x emit({plan.batch}) {emits(plan)}, end to end",
            "events/s",
            True,
            target=True,
        ),
        Row("worker_emit", "   emit replies back (dispatched + confirmed)", "events/s", True),
        Row("worker_cpu_source", f"   source CPU per event ({total} events)", "us", False),
        Row("worker_cpu_sink", "   sink CPU per event", "us", False),
        Row(
            "standalone_e2e",
            f"2. standalone event_dispatcher, {plan.events} events, end to end",
            "events/s",
            True,
            target=True,
        ),
        Row("standalone_dispatch", "   dispatch only (up to the last confirm)", "events/s", True),
        Row("standalone_cpu_sink", "   sink CPU per event", "us", False),
        Row("rss_source", "3. RSS of the source after the runs", "MiB", False),
        Row("rss_sink", "   RSS of the sink after the runs", "MiB", False),
    )


@dataclass
class Service:
    impl: Impl
    role: str  # "source" or "sink"
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Deployment:
    impl: Impl
    suffix: str
    source: Service
    sink: Service

    def dead(self) -> Service | None:
        return next((s for s in (self.source, self.sink) if s.proc.poll() is not None), None)


@dataclass
class Bench:
    plan: Plan
    broker: str
    tmp: Path
    children: Children
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, row_key: str, impl: Impl, value: float) -> None:
        self.samples.setdefault(row_key, {}).setdefault(impl.key, []).append(value)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAILED: {message}", file=sys.stderr, flush=True)


# --- processes --------------------------------------------------------------------------


def spawn_service(bench: Bench, impl: Impl, role: str, suffix: str) -> Service:
    cls = {"source": "EventSource", "sink": "EventSink"}[role]
    log = bench.tmp / f"{role}{suffix}.log"
    cmd: list[Any] = [impl.python, "-m", "nameko", "run", "--config", bench.tmp / "config.yaml"]
    cmd += ["--broker", bench.broker, f"{SERVICE_MODULE}:{cls}"]
    env = {**os.environ, "EVENTS_SUFFIX": suffix}
    proc = bench.children.spawn_logged(cmd, log, env=env, cwd=HERE)
    return Service(impl, role, proc, log)


def run_client(bench: Bench, dep: Deployment, scenario: str, **opts: Any) -> dict[str, Any]:
    cmd: list[Any] = [dep.impl.python, CLIENT, "--scenario", scenario, "--broker", bench.broker]
    cmd += ["--suffix", dep.suffix]
    for name, value in opts.items():
        cmd += [f"--{name}"] if value is True else [f"--{name}", str(value)]
    proc = bench.children.spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        bench.children.stop(proc)
        raise BenchError(f"{dep.impl.key} {scenario}: client timed out") from None
    if proc.returncode != 0 or not out.strip():
        logs = f"\n  client:\n{tail(err)}"
        for service in (dep.source, dep.sink):
            logs += f"\n  {service.role}:\n{tail(service.log, 4)}"
        raise BenchError(f"{dep.impl.key} {scenario}: client exited {proc.returncode}{logs}")
    return json.loads(out.splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd ("state") on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_all(bench: Bench) -> dict[str, Deployment]:
    """Spawn the four services at once, then wait for each implementation's to answer."""
    token = secrets.token_hex(2)
    deps = {}
    for impl in IMPLS:
        suffix = f"_{impl.key}_{token}"
        deps[impl.key] = Deployment(
            impl,
            suffix,
            spawn_service(bench, impl, "source", suffix),
            spawn_service(bench, impl, "sink", suffix),
        )
    ready = {}
    for key, dep in deps.items():
        print(
            f"  waiting for {key}'s services (and {bench.plan.warmup} warm-up events)", flush=True
        )
        try:
            result = run_client(bench, dep, "ready", warmup=bench.plan.warmup, timeout=60)
        except BenchError as exc:
            bench.fail(f"{key}: services did not start: {exc}")
            bench.children.stop(dep.source.proc, dep.sink.proc)
            continue
        print(f"    up after {result['up_s']:.2f} s, warm-up {result['warm_s']:.2f} s", flush=True)
        ready[key] = dep
    return ready


# --- measuring --------------------------------------------------------------------------


def scenario_options(plan: Plan, scenario: str) -> dict[str, Any]:
    if scenario == "worker":
        options: dict[str, Any] = {"rounds": plan.rounds, "batch": plan.batch}
        return {**options, "sequential": True} if plan.sequential else options
    return {"events": plan.events}


def measure(bench: Bench, deps: dict[str, Deployment]) -> None:
    for rep in range(bench.plan.reps):
        for index, scenario in enumerate(("worker", "standalone")):
            for impl in ordered(rep + index):
                dep = deps.get(impl.key)
                if dep is None:
                    continue  # its failure is already recorded
                print(f"  rep {rep + 1}/{bench.plan.reps} {scenario}: {impl.key}", flush=True)
                if dead := dep.dead():
                    bench.fail(f"{impl.key} {dead.role} service died\n{tail(dead.log)}")
                    del deps[impl.key]
                    continue
                before = [cpu_seconds(s.proc.pid) for s in (dep.source, dep.sink)]
                try:
                    result = run_client(
                        bench, dep, scenario, **scenario_options(bench.plan, scenario)
                    )
                except BenchError as exc:
                    bench.fail(str(exc))
                    continue
                after = [cpu_seconds(s.proc.pid) for s in (dep.source, dep.sink)]
                per_event = [
                    (a - b) / result["events"] * 1e6 for a, b in zip(after, before, strict=True)
                ]
                if scenario == "worker":
                    bench.add("worker_e2e", impl, result["events_per_s"])
                    bench.add("worker_emit", impl, result["emit_events_per_s"])
                    bench.add("worker_cpu_source", impl, per_event[0])
                    bench.add("worker_cpu_sink", impl, per_event[1])
                else:
                    bench.add("standalone_e2e", impl, result["events_per_s"])
                    bench.add("standalone_dispatch", impl, result["dispatch_events_per_s"])
                    bench.add("standalone_cpu_sink", impl, per_event[1])
    for dep in deps.values():
        if dep.dead() is None:
            bench.add("rss_source", dep.impl, rss_mib(dep.source.proc.pid))
            bench.add("rss_sink", dep.impl, rss_mib(dep.sink.proc.pid))


# --- report -----------------------------------------------------------------------------


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "events/s":
        return f"{value:,.0f}"
    return f"{value:.1f}"


def target_cell(row: Row, ratio: float | None) -> str:
    if not row.target:
        return ""
    verdict = "n/a" if ratio is None else "met" if ratio >= TARGET else "missed"
    return f">= {TARGET:g}x {verdict}"


def format_table(bench: Bench, verdicts: bool) -> str:
    head = ["row", "unit", "better", LABELS["shimeji"], LABELS["nameko"], "shimeji/nameko"]
    if verdicts:
        head.append("target")
    lines = [head]
    for row in make_rows(bench.plan):
        samples = bench.samples.get(row.key, {})
        ours, theirs = median(samples.get("shimeji")), median(samples.get("nameko"))
        ratio = ours / theirs if ours is not None and theirs else None
        line = [
            row.label,
            row.unit,
            "higher" if row.higher_is_better else "lower",
            fmt(ours, row.unit),
            fmt(theirs, row.unit),
            "n/a" if ratio is None else f"{ratio:.2f}x",
        ]
        if verdicts:
            line.append(target_cell(row, ratio))
        lines.append(line)
    return render(lines, lambda i, _n: i < 3)


def format_runs(bench: Bench) -> str:
    """Every sample, and the per-repetition ratio (each pair ran back to back)."""
    lines = ["all runs (in repetition order):"]
    for row in make_rows(bench.plan):
        samples = bench.samples.get(row.key, {})
        ours, theirs = samples.get("shimeji", []), samples.get("nameko", [])
        cells = [
            f"shimeji {', '.join(fmt(v, row.unit) for v in ours) or '-'}",
            f"nameko {', '.join(fmt(v, row.unit) for v in theirs) or '-'}",
        ]
        if ours and len(ours) == len(theirs) and all(theirs):
            cells.append(
                "ratios " + ", ".join(f"{a / b:.2f}x" for a, b in zip(ours, theirs, strict=True))
            )
        lines.append(f"  {row.label.strip()}: " + "; ".join(cells))
    return "\n".join(lines)


def format_verdict(bench: Bench) -> str:
    parts = []
    for row in make_rows(bench.plan):
        if not row.target:
            continue
        samples = bench.samples.get(row.key, {})
        ours, theirs = median(samples.get("shimeji")), median(samples.get("nameko"))
        if ours is None or not theirs:
            parts.append(f"{row.label.split(',')[0].strip()}: n/a")
            continue
        state = "met" if ours / theirs >= TARGET else "missed"
        parts.append(f"{row.label.split(',')[0].strip()} {ours / theirs:.2f}x {state}")
    return f"target: events end to end >= {TARGET:g}x nameko 2.14.1 -- " + "; ".join(parts)


def format_header(plan: Plan, vhost: str) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join(
        [
            f"shimeji vs nameko 2.14.1 events benchmark -- {plan.name} mode: "
            f"{plan.reps} rep(s), medians shown",
            f"  worker: {plan.rounds} x emit({plan.batch}) ({emits(plan)}) = "
            f"{plan.rounds * plan.batch} events; "
            f"standalone: {plan.events} events; max_workers {MAX_WORKERS}; "
            "source and sink each in its own `nameko run`",
            f"  vhost {vhost}; {os.cpu_count()} CPUs; load average {load}",
        ]
    )


# --- main -------------------------------------------------------------------------------


def run(args: argparse.Namespace, vhost: str, children: Children, tmp: Path) -> int:
    plan = dataclasses.replace(QUICK if args.quick else DEFAULT, sequential=args.sequential)
    broker = f"{BROKER}/{vhost}"
    write_config(tmp, broker)
    bench = Bench(plan, broker, tmp, children)
    started = time.perf_counter()
    print(format_header(plan, vhost), flush=True)
    deps = start_all(bench)
    measure(bench, deps)
    wall = time.perf_counter() - started
    print()
    print(format_table(bench, verdicts=not args.quick))
    if plan.reps > 1:
        print(format_runs(bench))
    if not args.quick:
        print(format_verdict(bench))
    print(f"measured in {wall:.1f} s")
    missing = [
        row.label.strip()
        for row in make_rows(plan)
        if any(not bench.samples.get(row.key, {}).get(impl.key) for impl in IMPLS)
    ]
    if missing or bench.failures:
        print(f"FAILED: {len(bench.failures)} error(s); no figure for: {', '.join(missing) or '-'}")
        for failure in bench.failures:
            print(f"  - {failure.splitlines()[0]}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, one repetition (CI)")
    parser.add_argument(
        "--sequential", action="store_true", help="worker: emit calls one after the other"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    children = Children(signal.SIGTERM, STOP_GRACE)

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="bench_events_") as tmp, throwaway_vhost() as vhost:
            status = run(args, vhost, children, Path(tmp))
        print(
            f"total wall time {time.perf_counter() - started:.1f} s (vhost setup and clean-up included)"
        )
        return status

    return run_cleanly(body, children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
