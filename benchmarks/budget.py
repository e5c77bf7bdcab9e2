"""A performance budget: CPU per call in each process, RSS and startup, against budgets.

How it works: one throwaway vhost, three ``nameko run`` processes of shimeji
(``_bench_service`` for RPC, ``_events_service:EventSink``, ``_http_service``).
The RPC service is started first and timed until a waiting client's first reply
(*startup*), then its VmRSS is read (*idle RSS*). Then ``--rounds`` rounds of four
rows: sequential RPC and a ``call_async`` fan-out (``_bench_client.py``), standalone
events to the sink and sequential HTTP GETs (``_budget_client.py``); each client reads
``utime + stime`` (``/proc/<pid>/stat``) of itself, of the service and of the broker
before and after its measured calls. After the rounds, the RPC service's VmRSS again
(*busy RSS*). Each figure is the minimum over the rounds (startup: over three trials):
what else runs on the machine only ever adds to a figure, so the least disturbed
round is the steadiest estimate of what the code costs.

Every figure named in ``budgets.json`` is checked: it fails when it is worse (higher)
than its budget by more than its tolerance (a fraction of the budget). Figures of
processes that are not ours (the shared broker, the HTTP row's ``http.client``) are
printed, never budgeted. Exit status 1 when a figure is over budget or a row failed.

    .venv/bin/python benchmarks/budget.py                  # the CI check (~40 s)
    .venv/bin/python benchmarks/budget.py --runs 10 --json calibration.json
    .venv/bin/python benchmarks/budget.py --propose        # budgets.json from this run's figures

See docs/benchmarks.md ("Performance budget") for how a budget is changed on purpose.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly
from _table import render
from bench_rpc import (
    MAX_WORKERS,
    QUICK,
    SHIMEJI,
    Bench,
    BenchError,
    find_broker_pid,
    impl_env,
    rss_mib,
    run_child,
    run_client,
    start_timed,
    tail,
    throwaway_vhost,
    write_config,
)

from nameko.testing.utils import find_free_port

HERE = Path(__file__).resolve().parent
BUDGETS = HERE / "budgets.json"
CLIENT = HERE / "_budget_client.py"
BROKER = "amqp://guest:guest@127.0.0.1:5672"
ROUNDS = 5
STARTUP_TRIALS = 3
CALLS = {"seq": 1000, "fanout": 3000, "events": 2000, "http": 1000}
NOT_OURS = {"seq": ("broker",), "fanout": ("broker",), "events": ("broker",),
            "http": ("broker", "client")}  # fmt: skip


def spawn(bench: Bench, name: str, config: Path, target: str) -> subprocess.Popen[bytes]:
    cmd: list[Any] = [SHIMEJI.python, "-m", "nameko", "run", "--config", config, target]
    return bench.children.spawn_logged(cmd, bench.tmp / f"{name}.log", env=impl_env(SHIMEJI),
                                       cwd=HERE)  # fmt: skip


def budget_client(bench: Bench, scenario: str, **opts: Any) -> dict:
    cmd: list[Any] = [SHIMEJI.python, CLIENT, "--scenario", scenario, "--broker", bench.broker]
    for name, value in opts.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    code, out, err = run_child(bench, cmd, scenario, subprocess.PIPE, env=impl_env(SHIMEJI))
    if code != 0 or not out.strip():
        raise BenchError(f"{scenario}: client exited {code}\n{tail(err)}")
    return json.loads(out.splitlines()[-1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("the HTTP service exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise BenchError("the HTTP service did not listen")


def measure_once(bench: Bench, rounds: int) -> dict[str, float]:
    """One measurement: every figure, medians over ``rounds``."""
    tmp, port = bench.tmp, find_free_port()
    write_config(tmp, bench.broker)
    http_config = tmp / "http.yaml"
    http_config.write_text(
        f"AMQP_URI: '{bench.broker}'\nmax_workers: {MAX_WORKERS}\n"
        f"WEB_SERVER_ADDRESS: '127.0.0.1:{port}'\n"
    )
    startups, kept = [], []
    for _ in range(STARTUP_TRIALS):  # each trial a fresh service; the last one is kept
        if kept:
            bench.children.stop(kept.pop().proc)
        service, seconds = start_timed(bench, SHIMEJI, f"_budget{time.monotonic_ns()}")
        kept.append(service)
        startups.append(seconds)
    rpc = kept[0]
    figures: dict[str, list[float]] = {
        "startup_s": startups,
        "idle_rss_mib": [rss_mib(rpc.proc.pid)],
    }
    sink = spawn(bench, "sink", tmp / "config.yaml", "_events_service:EventSink")
    web = spawn(bench, "http", http_config, "_http_service")
    wait_port(port, web)
    service = f"bench_echo{rpc.suffix}"
    for _ in range(rounds):
        rows = {
            "seq": run_client(bench, SHIMEJI, "seq", service, calls=CALLS["seq"], warmup=100,
                              cpu_pids=bench.cpu_pids(rpc.proc.pid)),
            "fanout": run_client(bench, SHIMEJI, "fanout", service, calls=CALLS["fanout"],
                                 warmup=100, cpu_pids=bench.cpu_pids(rpc.proc.pid)),
            "events": budget_client(bench, "events", calls=CALLS["events"],
                                    cpu_pids=bench.cpu_pids(sink.pid)),
            "http": budget_client(bench, "http", port=port, calls=CALLS["http"],
                                  cpu_pids=bench.cpu_pids(web.pid)),
        }  # fmt: skip
        for row, result in rows.items():
            for key, value in result.items():
                if key.startswith("cpu_us_") or key == "calls_per_s":
                    name = key.removeprefix("cpu_us_") + ("_us" if key.startswith("cpu") else "")
                    figures.setdefault(f"{row}.{name}", []).append(value)
    figures["busy_rss_mib"] = [rss_mib(rpc.proc.pid)]
    bench.children.stop(rpc.proc, sink, web)
    # the least disturbed round: other processes on the machine only ever add to a
    # figure (cache misses, preemption), so the minimum is the steadiest estimate
    return {name: min(values) for name, values in figures.items()}


def budgeted(name: str) -> bool:
    row, _, who = name.partition(".")
    return not name.endswith("calls_per_s") and who.removesuffix("_us") not in NOT_OURS.get(row, ())


def check(runs: list[dict[str, float]], budgets: dict[str, Any]) -> tuple[str, bool]:
    limits = budgets["figures"]
    table = [("figure", "median", "min-max", "budget", "limit", "verdict")]
    ok = True
    for name in runs[0]:
        values = [run[name] for run in runs]
        mid = statistics.median(values)
        spread = f"{min(values):.4g}-{max(values):.4g}"
        entry = limits.get(name)
        if entry is None:
            verdict = "budget missing" if budgeted(name) else "reported"
            ok &= not budgeted(name)
            table.append((name, f"{mid:.4g}", spread, "", "", verdict))
            continue
        limit = entry["budget"] * (1 + entry["tolerance"])
        over = [v for v in values if v > limit]  # every run must be within its budget
        ok &= not over
        verdict = "OVER" if over else "ok"
        table.append(
            (name, f"{mid:.4g}", spread, f"{entry['budget']:.4g}", f"{limit:.4g}", verdict)
        )
    return render(table, lambda i, n: i == 0), ok


def propose(runs: list[dict[str, float]], old: dict[str, Any]) -> dict[str, Any]:
    """Budgets at this run's medians, each keeping its tolerance (new figures: the default)."""
    figures = {}
    for name in runs[0]:
        if budgeted(name):
            tolerance = (
                old.get("figures", {}).get(name, {}).get("tolerance", old["default_tolerance"])
            )
            figures[name] = {"budget": round(statistics.median(r[name] for r in runs), 3),
                             "tolerance": tolerance}  # fmt: skip
    return {**old, "figures": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="whole measurements, for the spread")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per measurement")
    parser.add_argument("--budgets", type=Path, default=BUDGETS)
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures")
    parser.add_argument("--propose", action="store_true", help="print budgets at these figures")
    parser.add_argument(
        "--report-only", action="store_true", help="print the verdicts, exit 0 even when over"
    )
    args = parser.parse_args(argv)
    budgets = json.loads(args.budgets.read_text())
    children = Children()

    def body() -> int:
        started = time.perf_counter()
        runs = []
        with (
            tempfile.TemporaryDirectory(prefix="budget_") as tmp,
            throwaway_vhost("budget") as vhost,
        ):
            bench = Bench(QUICK, f"{BROKER}/{vhost}", Path(tmp), children, find_broker_pid())
            for run in range(args.runs):
                runs.append(measure_once(bench, args.rounds))
                print(
                    f"  run {run + 1}/{args.runs}: {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1))
        if args.propose:
            print(json.dumps(propose(runs, budgets), indent=2))
            return 0
        table, ok = check(runs, budgets)
        print(table)
        print("CPU in µs per call (utime + stime from /proc, 10 ms ticks); broker: the shared "
              "RabbitMQ node, everything it did meanwhile (reported, not budgeted)")  # fmt: skip
        verdict = "ok" if ok else "OVER BUDGET" if args.report_only else "FAILED"
        print(f"budget check: {verdict} ({time.perf_counter() - started:.0f} s)")
        return 0 if ok or args.report_only else 1

    return run_cleanly(body, children, (BenchError, subprocess.SubprocessError))


if __name__ == "__main__":
    sys.exit(main())
