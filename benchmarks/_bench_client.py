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
- ``threads``: ``--threads`` threads making ``--calls`` calls each.
- ``seed001``: ``--calls`` concurrent ``call_async`` of the one-second method.
- ``startup``: connect, print ``ready``, wait for ``go`` on stdin, call until
  the service answers (retrying on ``UnknownService``), print ``up``, then make
  ``--calls`` more calls.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

UNDER_EVENTLET = importlib.util.find_spec("eventlet") is not None
RETRY_INTERVAL = 0.01  # seconds between startup probes


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without math
    return sorted_values[int(rank) - 1]


def open_proxy(args: argparse.Namespace) -> Any:
    from nameko.standalone.rpc import ClusterRpcProxy

    return ClusterRpcProxy({"AMQP_URI": args.broker}, timeout=args.timeout)


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
    return {"python": sys.version.split()[0], "packages": packages}


def run_seq(args: argparse.Namespace) -> dict[str, Any]:
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        echo_calls(echo, args.warmup)
        latencies = []
        start = time.perf_counter()
        for i in range(args.calls):
            t0 = time.perf_counter()
            if echo(i) != i:
                raise AssertionError(f"echo({i}) returned the wrong value")
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "calls_per_s": args.calls / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def run_fanout(args: argparse.Namespace) -> dict[str, Any]:
    with open_proxy(args) as rpc:
        echo = rpc[args.service].echo
        echo_calls(echo, args.warmup)
        start = time.perf_counter()
        replies = [echo.call_async(i) for i in range(args.calls)]
        results = [reply.result() for reply in replies]
        elapsed = time.perf_counter() - start
    if results != list(range(args.calls)):
        raise AssertionError("fan-out replies do not match their calls")
    return {"calls_per_s": args.calls / elapsed}


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
        start = time.perf_counter()
        done.wait()
        elapsed = time.perf_counter() - start
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join(args.timeout)
        raise errors[0] if errors else RuntimeError("a client thread got stuck")
    for thread in threads:
        thread.join(args.timeout)
    return {"calls_per_s": args.threads * args.calls / elapsed}


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scenario == "threads" and UNDER_EVENTLET:
        import eventlet  # before nameko/kombu are imported: they must see patched sockets

        eventlet.monkey_patch()
    print(json.dumps(SCENARIOS[args.scenario](args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
