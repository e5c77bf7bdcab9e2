"""Client side of ``bench_aio.py``: runs ONE scenario, prints ONE JSON line.

Scenarios (``--scenario``), each on ``--service``:

- ``aio`` (shimeji only): ``nameko.standalone.aio.ClusterRpcProxy``, ``--warmup``
  calls, then ``--calls`` calls of ``echo`` at once (``asyncio.gather``).
- ``fanout``: the sync ``ClusterRpcProxy``: ``--calls`` ``call_async`` of ``echo``,
  then every ``.result()`` (under nameko 2.14.1 or shimeji).
- ``nap``: ``--calls`` calls of ``nap(1)`` at once (``--aio``: through the asyncio
  client, else sync ``call_async``): the wall time until the last reply.

Latency of a call: from the start of the batch to its reply (all are sent at
once, so this is what a caller of the batch waits); p50 and p99 of those.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


def percentile(sorted_values: list[float], pct: float) -> float:
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def summary(calls: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    latencies.sort()
    return {
        "calls_per_s": calls / elapsed,
        "wall_s": elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def aio_batch(proxy: Any, method: str, args: list[Any]) -> dict[str, Any]:
    start = time.perf_counter()
    latencies: list[float] = []

    async def one(value: Any) -> Any:
        result = await proxy[method](value)
        latencies.append(time.perf_counter() - start)
        return result

    results = await asyncio.gather(*(one(value) for value in args))
    elapsed = time.perf_counter() - start
    if method == "echo" and results != args:
        raise AssertionError("replies do not match their calls")
    return summary(len(args), elapsed, latencies)


async def run_aio(args: argparse.Namespace, method: str, values: list[Any]) -> dict[str, Any]:
    from nameko.standalone.aio import ClusterRpcProxy

    async with ClusterRpcProxy({"AMQP_URI": args.broker}, timeout=args.timeout) as rpc:
        service = rpc[args.service]
        await asyncio.gather(*(service.echo(i) for i in range(args.warmup)))
        return await aio_batch(service, method, values)


def run_sync(args: argparse.Namespace, method: str, values: list[Any]) -> dict[str, Any]:
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": args.broker}, timeout=args.timeout) as rpc:
        service = rpc[args.service]
        for i in range(args.warmup):
            service.echo(i)
        start = time.perf_counter()
        call = getattr(service, method)  # nameko 2.14 service proxies have no [ ]
        replies = [call.call_async(value) for value in values]
        latencies, results = [], []
        for reply in replies:
            results.append(reply.result())
            latencies.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - start
    if method == "echo" and results != values:
        raise AssertionError("replies do not match their calls")
    return summary(len(values), elapsed, latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("aio", "fanout", "nap"), required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--aio", action="store_true", help="nap: through the asyncio client")
    args = parser.parse_args()
    if args.scenario == "nap":
        values = [1] * args.calls
        if args.aio:
            result = asyncio.run(run_aio(args, "nap", values))
        else:
            result = run_sync(args, "nap", values)
    elif args.scenario == "aio":
        result = asyncio.run(run_aio(args, "echo", list(range(args.calls))))
    else:
        result = run_sync(args, "echo", list(range(args.calls)))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
