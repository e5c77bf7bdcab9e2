"""What presence costs a worker (D29): the stats observer, A/B.

Two figures, one run:

* ``observer``: ``worker_started`` + ``worker_finished`` of the presence
  `StatsObserver` on a real `WorkerContext`, per worker (µs), against the
  same loop without it;
* ``rpc``: sequential RPC calls from a standalone client to a container on
  the in-memory broker (no network: the framework's own per-call work is
  all there is, so an added cost shows most), with and without the
  observer attached, interleaved repetitions, medians.

    .venv/bin/python benchmarks/bench_presence.py          # 5 x 3,000 calls
    .venv/bin/python benchmarks/bench_presence.py --quick  # 3 x 500
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

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


def calls_per_second(observed: bool, calls: int) -> float:
    config = {"AMQP_URI": f"memory://bench-{uuid.uuid4().hex}"}
    container = ServiceContainer(Echo, config)
    if observed:
        container.worker_observers.append(StatsObserver())
    container.start()
    try:
        with ClusterRpcProxy(config, timeout=30) as proxy:
            proxy.echo.echo(0)  # warm up: reply queue, first worker thread
            started = time.perf_counter()
            for i in range(calls):
                proxy.echo.echo(i)
            return calls / (time.perf_counter() - started)
    finally:
        container.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reps, calls = (3, 500) if args.quick else (5, 3000)
    costs = [observer_cost(100_000) for _ in range(reps)]
    cost = statistics.median(c[0] - c[1] for c in costs)
    print(f"observer: {cost:.2f} µs per worker (median of {reps} x 100,000)")
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(reps):
        for observed in (False, True):  # interleaved: drifts hit both alike
            rates[observed].append(calls_per_second(observed, calls))
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"rpc, memory broker, {calls} sequential calls x {reps}, medians:")
    print(
        f"  without observer {off:8.0f} calls/s  (runs {', '.join(f'{r:.0f}' for r in rates[False])})"
    )
    print(
        f"  with observer    {on:8.0f} calls/s  (runs {', '.join(f'{r:.0f}' for r in rates[True])})"
    )
    print(f"  ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
