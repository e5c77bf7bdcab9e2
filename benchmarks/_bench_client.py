"""Client side of ``bench_rpc.py``: runs ONE scenario, prints ONE JSON line.

Runs under either interpreter: shimeji's venv or the nameko 2.14.1 venv. Only
the public standalone API is used (``nameko.standalone.rpc.ClusterRpcProxy``).
Under nameko (detected by ``eventlet`` being importable) the ``threads``
scenario monkey-patches first and gives each green thread its own proxy, since
nameko 2.14's standalone proxy is not thread-safe; under shimeji all threads
share one proxy.

Scenarios (``--scenario``):

- ``versions``: interpreter and package versions.
- ``seq``: ``--warmup`` untimed calls, then ``--calls`` timed sequential calls.
- ``fanout``: ``--calls`` ``call_async`` then every ``.result()``.
- ``--unconfirmed 1`` (shimeji only, with ``seq`` or ``fanout``): requests published
  with ``use_confirms=False`` and transient, as the raw floor's are.
- ``threads``: ``--threads`` threads making ``--calls`` calls each.
- ``payload``: ``--warmup`` untimed, then ``--calls`` sequential echo calls of a
  string of ``--size`` bytes; calls/s and MiB/s (request and reply both counted).
- ``cpu``: waits until ``--processes`` distinct service pids answer, then a
  fan-out of ``--calls`` ``burn(--iterations)`` (a CPU-bound method).
- ``seed001``: ``--calls`` concurrent ``call_async`` of the one-second method.
- ``startup``: connect, print ``ready``, wait for ``go`` on stdin, call until
  the service answers (retrying on ``UnknownService``), print ``up``, then make
  ``--calls`` more calls.

CPU per call: with ``--cpu-pids client=self,service=PID,broker=PID`` the
measured part of ``seq``, ``fanout``, ``threads``, ``payload`` and ``cpu`` is
bracketed by reads of ``utime + stime`` from ``/proc/<pid>/stat`` (the client
itself; the service process and its children, e.g. a ``--processes`` supervisor's;
the broker), and the result gets ``cpu_us_<name>``: microseconds per call.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

UNDER_EVENTLET = importlib.util.find_spec("eventlet") is not None
RETRY_INTERVAL = 0.01  # seconds between startup probes


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15, counted from 1


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a --processes supervisor's children)."""
    found = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                kids = [int(k) for k in children.read().split()]
        except OSError:
            continue
        for kid in kids:
            found += _tree(kid)
    return found


class CpuMeter:
    """CPU time of named process trees over the measured part of a scenario."""

    def __init__(self, spec: str) -> None:
        self.pids: dict[str, int] = {}
        for item in filter(None, spec.split(",")):
            name, _, pid = item.partition("=")
            self.pids[name] = os.getpid() if pid == "self" else int(pid)
        self.before: dict[str, dict[int, int]] = {}

    def _read(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for name, pid in self.pids.items():
            out[name] = {}
            for member in _tree(pid):
                try:
                    out[name][member] = _proc_ticks(member)
                except OSError:
                    continue
        return out

    def start(self) -> None:
        self.before = self._read()

    def stop(self, calls: int) -> dict[str, float]:
        after = self._read()
        result = {}
        for name, ticks in after.items():
            old = self.before.get(name, {})
            used = sum(t - old.get(pid, 0) for pid, t in ticks.items() if pid in old)
            result[f"cpu_us_{name}"] = used / CLK_TCK / calls * 1e6
        return result


METER = CpuMeter("")


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without math
    return sorted_values[int(rank) - 1]


def open_proxy(args: argparse.Namespace) -> Any:
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": args.broker}
    if args.unconfirmed:  # shimeji only: nameko 2.14's ClusterRpcProxy has no options
        return ClusterRpcProxy(config, timeout=args.timeout, use_confirms=False, delivery_mode=1)
    return ClusterRpcProxy(config, timeout=args.timeout)


def echo_calls(echo: Any, count: int) -> None:
    for i in range(count):
        if echo(i) != i:
            raise AssertionError(f"echo({i}) returned the wrong value")


def run_versions(args: argparse.Namespace) -> dict[str, Any]:
    names = ("shimeji", "nameko", "eventlet", "kombu", "amqp", "pamqp")
    packages = {}
    for name in names:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "shimeji" in packages:  # its `nameko` metadata (docs/installation.md) is not a nameko
        packages.pop("nameko", None)
    return {"python": sys.version.split()[0], "packages": packages}


def run_seq(args: argparse.Namespace) -> dict[str, Any]:
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        echo_calls(echo, args.warmup)
        latencies = []
        METER.start()
        start = time.perf_counter()
        for i in range(args.calls):
            t0 = time.perf_counter()
            if echo(i) != i:
                raise AssertionError(f"echo({i}) returned the wrong value")
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        cpu = METER.stop(args.calls)
    latencies.sort()
    return {
        **cpu,
        "calls_per_s": args.calls / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def run_fanout(args: argparse.Namespace) -> dict[str, Any]:
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        echo_calls(echo, args.warmup)
        METER.start()
        start = time.perf_counter()
        replies = [echo.call_async(i) for i in range(args.calls)]
        results = [reply.result() for reply in replies]
        elapsed = time.perf_counter() - start
        cpu = METER.stop(args.calls)
    if results != list(range(args.calls)):
        raise AssertionError("fan-out replies do not match their calls")
    return {**cpu, "calls_per_s": args.calls / elapsed}


def run_payload(args: argparse.Namespace) -> dict[str, Any]:
    value = "x" * args.size
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        for _ in range(args.warmup):
            echo(value)
        METER.start()
        start = time.perf_counter()
        for _ in range(args.calls):
            if echo(value) != value:
                raise AssertionError("the echo returned another payload")
        elapsed = time.perf_counter() - start
        cpu = METER.stop(args.calls)
    return {
        **cpu,
        "calls_per_s": args.calls / elapsed,
        "mib_per_s": 2 * args.size * args.calls / elapsed / 2**20,  # request + reply
    }


def run_cpu(args: argparse.Namespace) -> dict[str, Any]:
    """Wait for ``--processes`` distinct pids, then a fan-out of the CPU-bound method."""
    from nameko.exceptions import UnknownService

    with open_proxy(args) as rpc:
        service = rpc[args.service]
        seen: set[int] = set()
        deadline = time.monotonic() + args.timeout
        while len(seen) < args.processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(seen)} of {args.processes} processes answered")
            try:
                seen.update(r.result() for r in [service.pid.call_async() for _ in range(20)])
            except UnknownService:
                time.sleep(RETRY_INTERVAL)
        for reply in [service.burn.call_async(args.iterations) for _ in range(2 * args.processes)]:
            reply.result()  # warm up
        METER.start()
        start = time.perf_counter()
        replies = [service.burn.call_async(args.iterations) for _ in range(args.calls)]
        pids = [reply.result() for reply in replies]
        elapsed = time.perf_counter() - start
        cpu = METER.stop(args.calls)
    return {**cpu, "calls_per_s": args.calls / elapsed, "pids": len(set(pids))}


def run_threads(args: argparse.Namespace) -> dict[str, Any]:
    if UNDER_EVENTLET:
        return _timed_threads(args, _own_proxy_worker)  # nameko: one proxy per thread
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        echo_calls(echo, args.warmup)
        return _timed_threads(args, lambda a, ready, done: _shared_worker(echo, a, ready, done))


def _shared_worker(
    echo: Any, args: argparse.Namespace, ready: threading.Barrier, done: threading.Barrier
) -> None:
    ready.wait()
    echo_calls(echo, args.calls)
    done.wait()


def _own_proxy_worker(
    args: argparse.Namespace, ready: threading.Barrier, done: threading.Barrier
) -> None:
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        echo_calls(echo, 1)
        ready.wait()
        echo_calls(echo, args.calls)
        done.wait()  # before the proxy is torn down: teardown is not timed


Worker = Callable[[argparse.Namespace, threading.Barrier, threading.Barrier], None]


def _timed_threads(args: argparse.Namespace, worker: Worker) -> dict[str, Any]:
    """Start ``args.threads`` workers, time from all-ready to all-done."""
    ready = threading.Barrier(args.threads + 1, timeout=args.timeout)
    done = threading.Barrier(args.threads + 1, timeout=args.timeout * 10)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker(args, ready, done)
        except BaseException as exc:
            errors.append(exc)
            ready.abort()
            done.abort()

    threads = [threading.Thread(target=target, daemon=True) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        METER.start()
        start = time.perf_counter()
        done.wait()
        elapsed = time.perf_counter() - start
        cpu = METER.stop(args.threads * args.calls)
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join(args.timeout)
        raise errors[0] if errors else RuntimeError("a client thread got stuck")
    for thread in threads:
        thread.join(args.timeout)
    return {**cpu, "calls_per_s": args.threads * args.calls / elapsed}


def run_seed001(args: argparse.Namespace) -> dict[str, Any]:
    with open_proxy(args) as rpc:
        hello = rpc[args.service].hello
        start = time.perf_counter()
        replies = [hello.call_async(name=str(i)) for i in range(args.calls)]
        results = [reply.result() for reply in replies]
        elapsed = time.perf_counter() - start
    if results != [f"Hello, {i}!" for i in range(args.calls)]:
        raise AssertionError(f"unexpected replies: {results[:3]}...")
    return {"wall_s": elapsed}


def run_startup(args: argparse.Namespace) -> dict[str, Any]:
    from nameko.exceptions import UnknownService

    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise RuntimeError("expected 'go' on stdin")
        attempts = 1
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                echo(0)
                break
            except UnknownService:
                if time.monotonic() > deadline:
                    raise
                attempts += 1
                time.sleep(RETRY_INTERVAL)
        print("up", flush=True)
        echo_calls(echo, args.calls)
    return {"attempts": attempts}


SCENARIOS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "versions": run_versions,
    "seq": run_seq,
    "fanout": run_fanout,
    "threads": run_threads,
    "payload": run_payload,
    "cpu": run_cpu,
    "seed001": run_seed001,
    "startup": run_startup,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--service", default="bench_echo")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=30.0, help="per call, seconds")
    parser.add_argument("--size", type=int, default=65536, help="payload bytes")
    parser.add_argument("--processes", type=int, default=1, help="service pids to wait for")
    parser.add_argument("--iterations", type=int, default=500_000, help="burn() loop")
    parser.add_argument(
        "--unconfirmed", type=int, default=0, help="1: requests unconfirmed and transient"
    )
    parser.add_argument("--cpu-pids", default="", help="name=pid,... ('self': this client)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global METER
    args = parse_args(argv)
    METER = CpuMeter(args.cpu_pids)
    if args.scenario == "threads" and UNDER_EVENTLET:
        import eventlet  # before nameko/kombu are imported: they must see patched sockets

        eventlet.monkey_patch()
    print(json.dumps(SCENARIOS[args.scenario](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
