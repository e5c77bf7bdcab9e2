"""The RPC wire contract's floor, beside shimeji and nameko 2.14.1, in one run.

Four clients make the same echo calls, sequentially and pipelined, each against its
own server process on one throwaway vhost: shimeji and nameko 2.14.1 (``nameko
run _bench_service`` and ``ClusterRpcProxy``, as ``bench_rpc.py`` runs them), the
*contract floor* (``_floor_peer.py``: plain py-amqp doing nameko 2.14's RPC wire
contract, confirms and acks included, and nothing else) and the *no-confirm floor*
(the same, without confirms or acks, transient messages). Rows are interleaved
(the order rotates every repetition); medians; the client's, the service's and the
broker's CPU per call from ``/proc/<pid>/stat``. The broker is the shared RabbitMQ
node: its figure includes whatever else uses it meanwhile.

    .venv/bin/python benchmarks/bench_floor.py [--quick] [--reps N] [--json FILE]
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
    NAMEKO,
    QUICK,
    SHIMEJI,
    Bench,
    BenchError,
    LineReader,
    find_broker_pid,
    run_child,
    run_client,
    start_timed,
    tail,
    throwaway_vhost,
    write_config,
)

HERE = Path(__file__).resolve().parent
PEER = HERE / "_floor_peer.py"
HOST = "127.0.0.1:5672"
BROKER = f"amqp://guest:guest@{HOST}"
INFLIGHT = 16  # the floors' pipelined window: py-amqp's publish reads inbound frames, so a deeper one recurses
CONTRACT, LIGHT = "contract floor", "no-confirm floor"
CLIENTS = ("shimeji", "nameko 2.14.1", CONTRACT, LIGHT)
SHAPES = ("sequential", "pipelined")
CPU = ("client", "service", "broker")


def start_peer(bench: Bench, vhost: str, light: int) -> tuple[subprocess.Popen[bytes], str]:
    service = f"floor{light}"
    cmd = [SHIMEJI.python, PEER, "serve", "--host", HOST, "--vhost", vhost]
    cmd += ["--service", service, "--light", str(light)]
    proc = bench.children.spawn(cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if LineReader(proc).readline(30, watch=proc) != "ready":
        raise BenchError("the floor's server did not start")
    return proc, service


def run_peer_client(bench: Bench, vhost: str, service: str, light: int, **opts: Any) -> dict:
    cmd: list[Any] = [SHIMEJI.python, PEER, "call", "--host", HOST, "--vhost", vhost]
    cmd += ["--service", service, "--light", str(light), "--inflight", str(INFLIGHT)]
    for name, value in opts.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    code, out, err = run_child(bench, cmd, "floor client", subprocess.PIPE)
    if code != 0 or not out.strip():
        raise BenchError(f"floor client exited {code}\n{tail(err)}")
    return json.loads(out.splitlines()[-1])


def measure(args: argparse.Namespace, vhost: str, children: Children, tmp: Path) -> dict:
    broker = f"{BROKER}/{vhost}"
    bench = Bench(QUICK, broker, tmp, children, find_broker_pid())
    write_config(tmp, broker)
    services = {impl.key: start_timed(bench, impl, f"_floor_{impl.key}")[0] for impl in IMPLS}
    peers = {light: start_peer(bench, vhost, light) for light in (0, 1)}
    samples: dict[tuple[str, str], list[dict]] = {}
    for rep in range(args.reps):
        print(f"  repetition {rep + 1}/{args.reps}", flush=True)
        order = CLIENTS[rep % 4 :] + CLIENTS[: rep % 4]
        for shape in SHAPES:
            for client in order:
                result = one(bench, vhost, services, peers, client, shape, args)
                samples.setdefault((shape, client), []).append(result)
    for proc, _ in peers.values():
        assert proc.stdin is not None
        proc.stdin.close()
    return {f"{shape}|{client}": runs for (shape, client), runs in samples.items()}


IMPLS = (SHIMEJI, NAMEKO)


def one(bench: Bench, vhost: str, services: dict, peers: dict, client: str, shape: str,
        args: argparse.Namespace) -> dict:  # fmt: skip
    calls = args.calls
    if client in (CONTRACT, LIGHT):
        light = int(client == LIGHT)
        proc, service = peers[light]
        mode = "seq" if shape == "sequential" else "pipe"
        return run_peer_client(
            bench, vhost, service, light, mode=mode, calls=calls, warmup=args.warmup,
            cpu_pids=bench.cpu_pids(proc.pid),
        )  # fmt: skip
    impl = SHIMEJI if client == "shimeji" else NAMEKO
    service = services[impl.key]
    scenario = "seq" if shape == "sequential" else "fanout"
    return run_client(
        bench, impl, scenario, f"bench_echo{service.suffix}", calls=calls,
        warmup=args.warmup, cpu_pids=bench.cpu_pids(service.proc.pid),
    )  # fmt: skip


def med(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def report(samples: dict[str, list[dict]]) -> str:
    rows = [("row", "client", "calls/s (median)", "min-max", *(f"{w} µs/call" for w in CPU),
             "shimeji / this")]  # fmt: skip
    for shape in SHAPES:
        ours = med(samples[f"{shape}|shimeji"], "calls_per_s")
        for client in CLIENTS:
            runs = samples[f"{shape}|{client}"]
            rate = [r["calls_per_s"] for r in runs]
            cells = [med(runs, f"cpu_us_{w}") for w in CPU]
            ratio = f"{ours / statistics.median(rate):.2f}x" if ours else "n/a"
            rows.append((
                shape, client, f"{statistics.median(rate):,.0f}",
                f"{min(rate):,.0f}-{max(rate):,.0f}",
                *("n/a" if c is None else f"{c:.0f}" for c in cells),
                "" if client == "shimeji" else ratio,
            ))  # fmt: skip
    return render(rows, lambda i, n: i < 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 calls, one repetition")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.reps = args.reps or (1 if args.quick else 3)
    args.calls = args.calls or (300 if args.quick else 1500)
    children = Children()

    def body() -> int:
        started = time.perf_counter()
        with (
            tempfile.TemporaryDirectory(prefix="bench_floor_") as tmp,
            throwaway_vhost("bench_floor") as vhost,
        ):
            print(f"bench_floor: {args.calls} calls per row, {args.reps} repetitions, "
                  f"pipelined window {INFLIGHT} for the floors", flush=True)  # fmt: skip
            samples = measure(args, vhost, children, Path(tmp))
        print(report(samples))
        print("broker: the shared RabbitMQ node's beam.smp, all its work meanwhile (other "
              "users' too): an upper bound")  # fmt: skip
        print(f"total {time.perf_counter() - started:.1f} s")
        if args.json:
            args.json.write_text(json.dumps(samples, indent=1))
        return 0

    return run_cleanly(body, children, (BenchError, subprocess.SubprocessError))


if __name__ == "__main__":
    sys.exit(main())
