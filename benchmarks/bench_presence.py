"""What presence costs a worker (D29): the stats observer, A/B.

Two figures, one run:

* ``observer``: ``worker_started`` + ``worker_finished`` of the presence
  `StatsObserver` on a real `WorkerContext`, per worker (µs), against the
  same loop without it;
* ``rpc``: sequential RPC calls from a standalone client to a container on
  the in-memory broker (no network: the framework's own per-call work is
  all there is, so an added cost shows most), in alternating blocks with
  and without the observer on the same container, medians.

* ``--rabbit``: two ``nameko run`` processes of the same echo service on
  RabbitMQ (a throwaway vhost), one with presence on (the default) and one
  with ``PRESENCE: false``, called in turns: calls/s and the service
  process's CPU per call (``/proc/<pid>/stat``), which the machine's noise
  moves less than throughput.

    .venv/bin/python benchmarks/bench_presence.py          # 20 blocks of 1,000 calls
    .venv/bin/python benchmarks/bench_presence.py --quick  # 12 blocks of 300
    .venv/bin/python benchmarks/bench_presence.py --rabbit # + 5 x 2,000 over RabbitMQ
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from nameko._presence.stats import StatsObserver
from nameko.containers import ServiceContainer, WorkerContext
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy


class Echo:
    name = "echo"

    @rpc
    def echo(self, value):
        return value


def observer_cost(loops: int) -> tuple[float, float]:
    """(µs per worker with the observer, µs for the bare loop)."""
    container = ServiceContainer(Echo, {"AMQP_URI": "memory://bench-observer"})
    entrypoint = next(iter(container.entrypoints))
    contexts = [WorkerContext(container, None, entrypoint) for _ in range(loops)]
    observer = StatsObserver()
    started = time.perf_counter()
    for ctx in contexts:
        observer.worker_started(ctx)
        observer.worker_finished(ctx, None, None)
    with_observer = time.perf_counter() - started
    started = time.perf_counter()
    for _ctx in contexts:
        pass
    bare = time.perf_counter() - started
    return with_observer / loops * 1e6, bare / loops * 1e6


def memory_ab(blocks: int, calls: int) -> dict[bool, list[float]]:
    """Calls/s per block, alternating blocks with and without the observer on
    one container and one client (no restart between them: only the observer
    differs), each kind going first in turn."""
    config = {"AMQP_URI": f"memory://bench-{uuid.uuid4().hex}"}
    container = ServiceContainer(Echo, config)
    container.start()
    rates: dict[bool, list[float]] = {True: [], False: []}
    try:
        with ClusterRpcProxy(config, timeout=30) as proxy:
            proxy.echo.echo(0)  # warm up: reply queue, first worker thread
            for block in range(blocks):
                for observed in (False, True) if block % 2 else (True, False):
                    container.worker_observers[:] = [StatsObserver()] if observed else []
                    started = time.perf_counter()
                    for i in range(calls):
                        proxy.echo.echo(i)
                    rates[observed].append(calls / (time.perf_counter() - started))
    finally:
        container.stop()
    return rates


SERVICE = """\
import os
from nameko.rpc import rpc


class Echo:
    name = "presence_echo_" + os.environ["BENCH_SUFFIX"]

    @rpc
    def echo(self, value):
        return value
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rabbit_ab(reps: int, calls: int) -> None:
    from bench_rpc import BROKER, throwaway_vhost

    from nameko.testing.utils import assert_stops_raising

    with throwaway_vhost() as vhost, tempfile.TemporaryDirectory() as tmp:
        uri = f"{BROKER}/{vhost}"
        (Path(tmp) / "echo.py").write_text(SERVICE)
        procs = {on: _run_echo(tmp, uri, on) for on in (True, False)}
        try:
            with ClusterRpcProxy({"AMQP_URI": uri}, timeout=30) as proxy:
                for on in procs:
                    service = proxy[f"presence_echo_{'on' if on else 'off'}"]
                    assert_stops_raising(lambda s=service: s.echo(0), Exception, timeout=30)
                runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
                for rep in range(reps):
                    order = list(procs.items()) if rep % 2 else list(procs.items())[::-1]
                    for on, proc in order:  # in turns, each first in turn
                        service = proxy[f"presence_echo_{'on' if on else 'off'}"]
                        cpu, started = cpu_seconds(proc.pid), time.perf_counter()
                        for i in range(calls):
                            service.echo(i)
                        elapsed = time.perf_counter() - started
                        used = cpu_seconds(proc.pid) - cpu
                        runs[on].append((calls / elapsed, used / calls * 1e6))
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(30)
    print(f"rpc, RabbitMQ, nameko run, {calls} sequential calls x {reps}, medians:")
    for on in (False, True):
        rate = statistics.median(r for r, _ in runs[on])
        cpu_us = statistics.median(c for _, c in runs[on])
        label = "presence on " if on else "presence off"
        print(f"  {label} {rate:8.0f} calls/s  service CPU {cpu_us:6.0f} µs/call")


def _run_echo(folder: str, uri: str, on: bool) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BENCH_SUFFIX="on" if on else "off")
    cmd = [sys.executable, "-m", "nameko", "run", "--broker", uri, "echo"]
    if not on:
        cmd[4:4] = ["-d", "PRESENCE=false"]
    quiet = subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=quiet, stderr=quiet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rabbit", action="store_true", help="also A/B over RabbitMQ")
    args = parser.parse_args()
    reps, calls = (3, 300) if args.quick else (5, 1000)
    costs = [observer_cost(100_000) for _ in range(reps)]
    cost = statistics.median(c[0] - c[1] for c in costs)
    print(f"observer: {cost:.2f} µs per worker (median of {reps} x 100,000)")
    blocks = reps * 4
    rates = memory_ab(blocks, calls)
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"rpc, memory broker, {blocks} alternating blocks of {calls} sequential calls, medians:")
    pairs = [b / a for a, b in zip(rates[False], rates[True], strict=True)]
    print(f"  without observer {off:8.0f} calls/s")
    print(f"  with observer    {on:8.0f} calls/s")
    print(
        f"  ratio of medians {on / off:.3f}, median of block-pair ratios {statistics.median(pairs):.3f}"
    )
    if args.rabbit:
        rabbit_ab(reps, 2000 if not args.quick else 300)


if __name__ == "__main__":
    main()
