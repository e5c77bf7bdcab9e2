"""How ``WEB_QUEUE_LIMIT`` shapes an ``@http`` service under load, and what the caps cost.

Two measurements on the echo service of ``bench_http.py`` (``_http_service.py``,
``nameko run``, quiet logging, default ``max_workers``), with ``wrk``:

* ``queue``: one server per queue limit; every limit is loaded with each
  connection count in turn. The table gives req/s, p50/p99 latency, the share
  answered 503 and the server's peak RSS for each pair: the numbers behind the
  default (docs/architecture.md, D34).
* ``compare``: two source trees (``--src A --src B``, e.g. main's and a
  branch's ``src``), one server each, loaded in alternation with the same
  connection count; medians and the ratio B/A. This is how a change on the
  request path is shown to cost nothing.

    .venv/bin/python benchmarks/bench_web_limits.py queue [--limits 100,256,512,1024]
        [--connections 10,50,200,500] [--seconds 3]
    .venv/bin/python benchmarks/bench_web_limits.py compare --src A --src B
        [--connections 10] [--reps 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly
from _table import render
from bench_http import (
    QUIET_LOGGING,
    SHIMEJI,
    BenchError,
    Row,
    Running,
    free_port,
    peak_rss_mib,
    reset_peak_rss,
    run_wrk,
    wait_ready,
)

HERE = Path(__file__).resolve().parent
AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
WARMUP = 1  # seconds of wrk before a server's first measured run


def start(children: Children, tmp: Path, extra: str, src: str | None = None) -> Running:
    port = free_port()
    config = tmp / f"config-{port}.yaml"
    config.write_text(
        f"AMQP_URI: '{AMQP_URI}'\nWEB_SERVER_ADDRESS: '127.0.0.1:{port}'\n{extra}{QUIET_LOGGING}"
    )
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    log = tmp / f"server-{port}.log"
    proc = children.spawn_logged(SHIMEJI.command(config, port), log, env=env, cwd=HERE)
    running = Running(SHIMEJI, True, port, proc, log)
    wait_ready(running)
    run_wrk(children, running.url, Row("warm", "warm", True, 2, 10), WARMUP)
    return running


def load(children: Children, running: Running, connections: int, seconds: int) -> dict[str, Any]:
    fresh = reset_peak_rss(running.proc.pid)
    threads = min(2, connections)
    result = run_wrk(children, running.url, Row("m", "m", True, threads, connections), seconds)
    return {
        "rate": result.rate,
        "p50": result.p50_ms,
        "p99": result.p99_ms,
        "refused": 100.0 * result.non2xx / result.requests if result.requests else float("nan"),
        "socket_errors": sum(result.socket_errors.values()),
        "rss": peak_rss_mib(running.proc.pid),
        "rss_fresh": fresh,
    }


def queue_table(children: Children, tmp: Path, args: argparse.Namespace) -> None:
    rows = []
    for limit in args.limits:
        running = start(children, tmp, f"WEB_QUEUE_LIMIT: {limit}\n")
        try:
            for connections in args.connections:
                m = load(children, running, connections, args.seconds)
                print(f"  limit {limit} c{connections}: {m}", flush=True)
                rows.append(
                    [
                        f"{limit}",
                        f"{connections}",
                        f"{m['rate']:,.0f}",
                        f"{m['p50']:.1f}",
                        f"{m['p99']:.1f}",
                        f"{m['refused']:.1f}%",
                        f"{m['socket_errors']}",
                        f"{m['rss']:.1f}",
                    ]
                )
        finally:
            children.stop(running.proc)
    headers = [
        "WEB_QUEUE_LIMIT",
        "wrk -c",
        "req/s",
        "p50 ms",
        "p99 ms",
        "503",
        "socket err",
        "RSS MiB",
    ]
    print(render([headers, *rows], lambda i, n: False))


def compare(children: Children, tmp: Path, args: argparse.Namespace) -> None:
    if len(args.src) != 2:
        raise BenchError("compare needs two --src")
    servers = [start(children, tmp, "", src) for src in args.src]
    rates: list[list[float]] = [[], []]
    try:
        for rep in range(args.reps):
            order = (0, 1) if rep % 2 == 0 else (1, 0)
            for index in order:
                for connections in args.connections:
                    m = load(children, servers[index], connections, args.seconds)
                    rates[index].append(m["rate"])
                    print(f"  rep {rep + 1} {args.src[index]}: {m['rate']:,.0f} req/s", flush=True)
    finally:
        children.stop(*(s.proc for s in servers))
    a, b = (statistics.median(r) for r in rates)
    rows = [
        [src, f"{statistics.median(r):,.0f}", " ".join(f"{x:,.0f}" for x in r)]
        for src, r in zip(args.src, rates, strict=True)
    ]
    print(render([["src", "median req/s", "runs"], *rows], lambda i, n: i != 1))
    print(f"ratio B/A: {b / a:.3f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("queue", "compare"))
    ints = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--limits", type=ints, default=[100, 256, 512, 1024])
    parser.add_argument("--connections", type=ints, default=None)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--src", action="append", default=[])
    args = parser.parse_args(argv)
    if args.connections is None:
        args.connections = [10, 50, 200, 500] if args.mode == "queue" else [10]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    children = Children()

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="bench-web-limits-") as tmp:
            (queue_table if args.mode == "queue" else compare)(children, Path(tmp), args)
        return 0

    return run_cleanly(body, children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
