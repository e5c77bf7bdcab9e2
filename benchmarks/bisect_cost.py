"""Where the per-call cost went: the same measurement on several commits' sources.

How it works: each commit's ``src/`` is exported (``git archive``) into a temporary
directory; for every round, and for every commit in turn (the order rotates each
round), a ``nameko run _bench_service`` process of that source is started with
``PYTHONPATH`` pointing at it (first on the path, ahead of the virtualenv's editable
install) and timed until a waiting client's first reply (*startup*); its VmRSS is
read (*idle*); ``_bench_client.py``, under the same source, makes ``--calls``
sequential echo calls through the standalone ``ClusterRpcProxy`` while reading the
client's, the service's and the broker's ``utime + stime`` from ``/proc``; then the
service's VmRSS again (*after*). The table gives the median of the rounds and the
spread of the CPU figures. A tool to run by hand (about 5 s per commit per round),
not in CI.

    .venv/bin/python benchmarks/bisect_cost.py [--rounds 3] [--calls 1000] [COMMIT ...]

Without commits: the merges of the features added since ``c7b239f`` (COMMITS).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _children import Children, run_cleanly
from _table import render
from bench_rpc import (
    QUICK,
    SHIMEJI,
    Bench,
    BenchError,
    find_broker_pid,
    rss_mib,
    run_client,
    start_timed,
    throwaway_vhost,
    write_config,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BROKER = "amqp://guest:guest@127.0.0.1:5672"
COMMITS = (  # (commit, what it added), oldest first, on main's first-parent line
    ("c7b239f", "base: end of the first performance wave"),
    ("106ec5f", "oversize refusals, closing connections, secrets in config output"),
    ("787186c", "HTTP and WebSocket entrypoints"),
    ("32c206e", "nameko 3's RPC client API, the pytest plugin"),
    ("aa32c47", "pipelined event dispatch, a closed connection never re-opened"),
    ("72836ef", "--processes, the shell's timeout, CLI errors"),
    ("0ee5494", "RPC replies acked (cumulative)"),
    ("aeb3a03", "async def entrypoints: Slots, the loop bridge"),
    ("7d68a34", "deadlines, retry policies, delivery counting"),
    ("5b9fdda", "worker observers"),
    ("b00fa5d", "tracing hooks"),
    ("7bc2286", "presence announcements"),
    ("c29ef62", "ops endpoint, metrics observer"),
    ("46bec0d", "review round (the performance issue's 'today')"),
    ("61dd464", "container worker hooks (otel-dist)"),
    ("HEAD", "today"),
)


def export_src(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "src"], check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into / "src"


def measure(bench: Bench, src: Path, tag: str, calls: int) -> dict[str, float]:
    os.environ["PYTHONPATH"] = str(src)  # the children inherit it (bench_rpc.impl_env)
    service, startup = start_timed(bench, SHIMEJI, f"_bisect_{tag}_{time.monotonic_ns()}")
    try:
        idle = rss_mib(service.proc.pid)
        result = run_client(bench, SHIMEJI, "seq", f"bench_echo{service.suffix}", calls=calls,
                            warmup=200, cpu_pids=bench.cpu_pids(service.proc.pid))  # fmt: skip
        after = rss_mib(service.proc.pid)
    finally:
        bench.children.stop(service.proc)
    return {"startup_s": startup, "idle_mib": idle, "after_mib": after,
            "client_us": result["cpu_us_client"], "service_us": result["cpu_us_service"],
            "broker_us": result.get("cpu_us_broker", float("nan")),
            "calls_per_s": result["calls_per_s"]}  # fmt: skip


def report(commits: list[tuple[str, str]], samples: dict[str, list[dict[str, float]]]) -> str:
    rows = [("commit", "adds", "client µs", "service µs", "broker µs", "calls/s",
             "idle MiB", "after MiB", "startup s")]  # fmt: skip
    for commit, what in commits:
        runs = samples[commit]

        def cell(key: str, spread: bool = False, digits: int = 0, runs: list = runs) -> str:
            values = [r[key] for r in runs]
            mid = f"{statistics.median(values):,.{digits}f}"
            return f"{mid} ({min(values):,.{digits}f}-{max(values):,.{digits}f})" if spread else mid

        rows.append((commit, what, cell("client_us", True), cell("service_us", True),
                     cell("broker_us"), cell("calls_per_s"), cell("idle_mib", digits=1),
                     cell("after_mib", digits=1), cell("startup_s", digits=2)))  # fmt: skip
    return render(rows, lambda i, n: i < 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="*", help="commits to measure (default: COMMITS)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args(argv)
    commits = [(c, "") for c in args.commits] or list(COMMITS)
    children = Children()

    def body() -> int:
        started = time.perf_counter()
        with (
            tempfile.TemporaryDirectory(prefix="bisect_") as tmp,
            throwaway_vhost("bisect") as vhost,
        ):
            broker = f"{BROKER}/{vhost}"
            bench = Bench(QUICK, broker, Path(tmp), children, find_broker_pid())
            write_config(Path(tmp), broker)
            srcs = {c: export_src(c, Path(tmp) / f"src{i}") for i, (c, _) in enumerate(commits)}
            samples: dict[str, list[dict[str, float]]] = {c: [] for c, _ in commits}
            for rnd in range(args.rounds):
                order = commits[rnd % len(commits) :] + commits[: rnd % len(commits)]
                for i, (commit, _) in enumerate(order):
                    samples[commit].append(measure(bench, srcs[commit], str(i), args.calls))
                print(f"  round {rnd + 1}/{args.rounds}: {time.perf_counter() - started:.0f} s",
                      flush=True)  # fmt: skip
        print(report(commits, samples))
        print("medians of the rounds (CPU: min-max in brackets); sequential echo calls through "
              "ClusterRpcProxy against nameko run; broker: the shared node, all its work")  # fmt: skip
        return 0

    return run_cleanly(body, children, (BenchError, subprocess.SubprocessError))


if __name__ == "__main__":
    sys.exit(main())
