"""Client side of ``bench_events.py``: runs ONE scenario, prints ONE JSON line.

Runs under either interpreter (shimeji's venv or the nameko 2.14.1 venv) and
uses only the public standalone API: ``ClusterRpcProxy`` and
``nameko.standalone.events.event_dispatcher``. No eventlet monkey-patching.

Scenarios (``--scenario``):

- ``ready``: wait (retrying on ``UnknownService``) until the source and the sink
  answer, then a warm-up: ``emit(--warmup)`` and wait until the sink has them
  all; then ``reset()``.
- ``worker``: ``--rounds`` ``call_async`` of ``source.emit(--batch)``, all
  issued at once (the service runs up to ``max_workers`` of them at a time),
  every reply collected, then ``sink.count()`` polled every 10 ms until it
  reaches rounds x batch. ``--sequential``: one emit after the other instead. events/s = total / (first emit to the count reaching
  the total).
- ``standalone``: ``--events`` events from the standalone ``event_dispatcher``
  claiming to come from the source. shimeji: ``pipeline=True``, then
  ``flush()``; nameko: its plain function (each call waits for its confirm).
  Reports the dispatch-only rate (up to the last confirm) and the end-to-end
  rate (up to the sink's count reaching the total).

Both load scenarios check that the sink got every event exactly once: after the
count reaches the total it is read again after ``--settle`` seconds, and it
must still equal the total, as must the number of distinct sequence numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from typing import Any

UNDER_EVENTLET = importlib.util.find_spec("eventlet") is not None  # nameko 2.14.1
POLL_INTERVAL = 0.01  # seconds between sink.count() polls


class Lost(Exception):
    """Not every event reached the sink (or some arrived twice)."""


def open_proxy(args: argparse.Namespace) -> Any:
    from nameko.standalone.rpc import ClusterRpcProxy

    return ClusterRpcProxy({"AMQP_URI": args.broker}, timeout=args.timeout)


def source_name(args: argparse.Namespace) -> str:
    return "events_source" + args.suffix


def sink_name(args: argparse.Namespace) -> str:
    return "events_sink" + args.suffix


def wait_count(sink: Any, total: int, timeout: float) -> float:
    """Poll ``sink.count()`` until it reaches ``total``; the perf_counter when it did."""
    deadline = time.monotonic() + timeout
    while True:
        count = sink.count()
        if count >= total:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise Lost(f"sink has {count} of {total} events after {timeout:.0f} s")
        time.sleep(POLL_INTERVAL)


def check_exact(sink: Any, total: int, settle: float) -> None:
    time.sleep(settle)
    count, distinct = sink.count(), sink.distinct()
    if count != total or distinct != total:
        raise Lost(f"sink counted {count} events, {distinct} distinct, expected {total}")


def run_ready(args: argparse.Namespace) -> dict[str, Any]:
    from nameko.exceptions import UnknownService

    start = time.perf_counter()
    with open_proxy(args) as rpc:
        source, sink = rpc[source_name(args)], rpc[sink_name(args)]
        deadline = time.monotonic() + args.timeout
        for probe in (sink.reset, lambda: source.emit(0)):
            while True:
                try:
                    probe()
                    break
                except UnknownService:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(POLL_INTERVAL)
        up = time.perf_counter()
        source.emit(args.warmup)
        wait_count(sink, args.warmup, args.timeout)
        check_exact(sink, args.warmup, args.settle)
        sink.reset()
    return {"up_s": up - start, "warm_s": time.perf_counter() - up}


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    total = args.rounds * args.batch
    with open_proxy(args) as rpc:
        source, sink = rpc[source_name(args)], rpc[sink_name(args)]
        sink.reset()
        start = time.perf_counter()
        if args.sequential:
            results = [source.emit(args.batch, i * args.batch) for i in range(args.rounds)]
        else:
            calls = [source.emit.call_async(args.batch, i * args.batch) for i in range(args.rounds)]
            results = [reply.result() for reply in calls]
        emitted = time.perf_counter()
        if results != [args.batch] * args.rounds:
            raise AssertionError(f"unexpected emit results: {results[:3]}...")
        done = wait_count(sink, total, args.timeout)
        check_exact(sink, total, args.settle)
    return {
        "events": total,
        "events_per_s": total / (done - start),
        "emit_events_per_s": total / (emitted - start),
    }


def standalone_dispatcher(config: dict[str, Any]) -> tuple[Callable[..., None], Callable[[], None]]:
    from nameko.standalone.events import event_dispatcher

    if UNDER_EVENTLET:  # nameko 2.14.1: a plain function, each call waits for its confirm
        return event_dispatcher(config), lambda: None
    dispatcher = event_dispatcher(config, pipeline=True)
    return dispatcher, dispatcher.flush


def run_standalone(args: argparse.Namespace) -> dict[str, Any]:
    total = args.events
    source = source_name(args)
    with open_proxy(args) as rpc:
        sink = rpc[sink_name(args)]
        dispatch, flush = standalone_dispatcher({"AMQP_URI": args.broker})
        dispatch(source, "warmup", {"seq": -1})  # connects; nobody listens to "warmup"
        flush()
        sink.reset()
        start = time.perf_counter()
        for seq in range(total):
            dispatch(source, "tick", {"seq": seq})
        flush()
        dispatched = time.perf_counter()
        done = wait_count(sink, total, args.timeout)
        check_exact(sink, total, args.settle)
    return {
        "events": total,
        "dispatch_events_per_s": total / (dispatched - start),
        "events_per_s": total / (done - start),
    }


SCENARIOS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "ready": run_ready,
    "worker": run_worker,
    "standalone": run_standalone,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--suffix", default="", help="the services' EVENTS_SUFFIX")
    parser.add_argument("--rounds", type=int, default=20, help="worker: emit calls")
    parser.add_argument("--batch", type=int, default=100, help="worker: events per emit")
    parser.add_argument("--sequential", action="store_true", help="worker: emit one by one")
    parser.add_argument("--events", type=int, default=2000, help="standalone: events")
    parser.add_argument("--warmup", type=int, default=50, help="ready: warm-up events")
    parser.add_argument("--settle", type=float, default=0.2, help="seconds before recount")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = SCENARIOS[args.scenario](args)
    except Lost as exc:
        print(f"LOST: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
