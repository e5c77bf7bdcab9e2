"""A FastStream RabbitMQ request/reply peer: the asyncio reference for bench_aio.py.

Runs under its own virtualenv, ``.venv-faststream`` (``pip install
'faststream[rabbit]'``), never under shimeji's. ``bench_aio.py`` starts
``serve`` in the background, waits for its ``ready`` line, runs ``client``
once per row and reads the one JSON line it prints, then stops the server
with SIGTERM::

    .venv-faststream/bin/python benchmarks/_faststream_peer.py serve \\
        --broker amqp://guest:guest@127.0.0.1:5672/VHOST --queue NAME
    .venv-faststream/bin/python benchmarks/_faststream_peer.py client \\
        --broker amqp://guest:guest@127.0.0.1:5672/VHOST --queue NAME \\
        --calls 1000 --concurrency 1000 --warmup 50

``serve``: one subscriber on the queue whose handler returns its argument;
FastStream publishes that return value to the request's ``reply_to``. It
prints ``ready`` once the subscriber is consuming and exits 0 on SIGTERM or
SIGINT. Per-message logging is off (``logger=None``), as in a benchmark.

``client``: ``broker.request(i, queue=NAME)`` (FastStream's RPC call over
RabbitMQ's direct reply-to, ``amq.rabbitmq.reply-to``), W untimed warm-up
calls, then N timed calls in ``asyncio.gather`` batches of C. Each reply
must decode to its request's integer. It prints one JSON line with
``calls_per_s``, ``p50_ms``, ``p99_ms``, ``calls``, ``concurrency`` and
``faststream`` (the version); a wrong reply or a timeout (30 s per call,
counted from when the call is issued) exits 1 with a message on stderr.

Note: FastStream 0.5-0.7 holds one lock per broker for each request (it
consumes from the direct reply-to queue, publishes, waits for the reply,
then cancels), so one client's concurrent requests run one at a time; a
request's latency includes its wait for that lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from importlib.metadata import version

from faststream.rabbit import RabbitBroker

REQUEST_TIMEOUT = 30.0


class BadReply(Exception):
    """A reply that does not match its request, or no reply in time."""


def make_broker(url: str) -> RabbitBroker:
    return RabbitBroker(url, logger=None)


async def serve(url: str, queue: str) -> None:
    broker = make_broker(url)

    @broker.subscriber(queue)
    async def echo(msg: object) -> object:
        return msg

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with broker:
        await broker.start()
        print("ready", flush=True)
        await stop.wait()


async def call(broker: RabbitBroker, queue: str, value: int) -> float:
    """One request; returns its latency in seconds."""
    start = time.perf_counter()
    try:
        request = broker.request(value, queue=queue, timeout=REQUEST_TIMEOUT)
        reply = await asyncio.wait_for(request, REQUEST_TIMEOUT)
    except (TimeoutError, asyncio.TimeoutError):
        raise BadReply(f"request {value} got no reply within {REQUEST_TIMEOUT:g} s")
    elapsed = time.perf_counter() - start
    body = await reply.decode()
    if body != value:
        raise BadReply(f"request {value} got reply {body!r}")
    return elapsed


async def run_batches(
    broker: RabbitBroker, queue: str, calls: int, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    for first in range(0, calls, concurrency):
        batch = range(first, min(first + concurrency, calls))
        latencies += await asyncio.gather(*(call(broker, queue, i) for i in batch))
    return latencies


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def summary(latencies: list[float], wall: float, concurrency: int) -> dict[str, object]:
    ordered = sorted(latencies)
    return {
        "calls_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "calls": len(latencies),
        "concurrency": concurrency,
        "faststream": version("faststream"),
    }


async def client(url: str, queue: str, calls: int, concurrency: int, warmup: int) -> None:
    async with make_broker(url) as broker:
        await broker.start()
        await run_batches(broker, queue, warmup, concurrency)
        start = time.perf_counter()
        latencies = await run_batches(broker, queue, calls, concurrency)
        wall = time.perf_counter() - start
    print(json.dumps(summary(latencies, wall, concurrency)), flush=True)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("serve", "client"):
        mode = modes.add_parser(name)
        mode.add_argument("--broker", required=True, help="AMQP URL, vhost included")
        mode.add_argument("--queue", required=True)
    timed = modes.choices["client"]
    timed.add_argument("--calls", type=positive, required=True)
    timed.add_argument("--concurrency", type=positive, required=True)
    timed.add_argument("--warmup", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "serve":
        asyncio.run(serve(args.broker, args.queue))
        return 0
    try:
        asyncio.run(client(args.broker, args.queue, args.calls, args.concurrency, args.warmup))
    except BadReply as error:
        print(f"_faststream_peer client: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
