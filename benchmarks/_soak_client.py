"""The load of ``soak.py``: RPC calls and events, through the public API only.

Prints ``ready`` once connected, then runs the load and prints ONE JSON line
with the outcome. Progress goes to stderr every few seconds. With
``--probe`` it only waits until ``--instances`` different processes answer
``soak.pid()`` and dispatches the probe event (id -1), so that the driver
itself never holds a connection to the vhost it deletes at the end.

- RPC: ``--threads`` threads share ONE ``ClusterRpcProxy`` (thread-safe,
  ``timeout=--timeout`` per call) and take call ids 0..calls-1 in turn. Each
  id is called as ``soak.work(id)`` until one attempt returns ``id``, at most
  ``--attempts`` times: a timeout or a lost connection (or anything else,
  counted by its type) is retried with the SAME id, so the service's records
  show every duplicate execution. A call's latency runs from its first
  attempt to its successful one: what the caller waited.
- Events: one thread dispatches ``tick`` events ``{"id": i, "sent": t}`` as
  ``soak_source`` with ``event_dispatcher(config, pipeline=True)``, in
  batches of ``--batch`` followed by ``flush()`` (the confirm point); a batch
  whose flush raises is dispatched again whole, same ids. Events keep pace
  with the calls (event i goes once i/events of the calls are done), so the
  two loads stay mixed from start to end instead of the events queueing up
  in the first seconds.

Bookkeeping is preallocated (one array slot per id) so that the client's
RSS growth is the client library's, not this script's.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any

from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy

SOURCE = "soak_source"
EVENT_TYPE = "tick"
PROGRESS_EVERY = 5.0  # seconds between progress lines
PACE_POLL = 0.005  # seconds: how often the event thread looks at the calls' progress
ERROR_SAMPLES = 5  # distinct error messages kept per type


class Load:
    """Shared state of the load threads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.next_call = 0
        self.calls_done = 0
        self.latency = array("d", [math.nan]) * args.calls  # seconds; nan: never succeeded
        self.began = array("d", [0.0]) * args.calls  # wall clock: the driver's kill times are
        self.attempts = array("B", [0]) * args.calls
        self.errors: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, list[str]] = {}
        self.events_confirmed = 0
        self.unconfirmed: list[int] = []
        self.batches_retried = 0
        self.calls_end = 0.0
        self.events_end = 0.0

    def take(self) -> int | None:
        with self.lock:
            if self.next_call >= self.args.calls:
                return None
            self.next_call += 1
            return self.next_call - 1

    def finished(self) -> None:
        with self.lock:
            self.calls_done += 1

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        with self.lock:
            self.errors[name] += 1
            seen = self.samples.setdefault(name, [])
            text = str(exc)[:200]
            if len(seen) < ERROR_SAMPLES and text not in seen:
                seen.append(text)

    def events_allowed(self) -> int:
        """How many events may have been sent, given the calls done so far."""
        args = self.args
        if args.calls == 0 or self.calls_done >= args.calls:
            return args.events
        return math.ceil(self.calls_done * args.events / args.calls)


def vm_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def call_one(load: Load, work: Callable[[int], Any], call_id: int) -> None:
    """``work(call_id)`` until it returns ``call_id``, at most ``--attempts`` times."""
    first = time.perf_counter()
    load.began[call_id] = time.time()
    for attempt in range(1, load.args.attempts + 1):
        load.attempts[call_id] = attempt
        try:
            result = work(call_id)
        except Exception as exc:  # RpcTimeout, ConnectionLost, ...: counted, then retried
            load.error(exc)
            if isinstance(exc, ConnectionError):
                time.sleep(load.args.backoff)  # the client is reconnecting: do not spin
            continue
        if result == call_id:
            load.latency[call_id] = time.perf_counter() - first
            return
        load.error(AssertionError(f"work({call_id}) returned {result!r}"))


def rpc_thread(load: Load, proxy: Any) -> None:
    work = proxy.soak.work
    while (call_id := load.take()) is not None:
        call_one(load, work, call_id)
        load.finished()
    with load.lock:
        load.calls_end = max(load.calls_end, time.perf_counter())


def dispatch_batch(load: Load, dispatch: Any, ids: range) -> bool:
    """Dispatch ``ids`` and flush, again (same ids) while the flush fails."""
    for _ in range(load.args.attempts):
        try:
            for event_id in ids:
                dispatch(SOURCE, EVENT_TYPE, {"id": event_id, "sent": time.time()})
            dispatch.flush()
            return True
        except Exception as exc:
            load.error(exc)
            load.batches_retried += 1
            time.sleep(load.args.backoff)
    return False


def event_thread(load: Load, dispatch: Any) -> None:
    total, batch = load.args.events, load.args.batch
    for start in range(0, total, batch):
        ids = range(start, min(start + batch, total))
        while load.events_allowed() < ids.stop:
            time.sleep(PACE_POLL)
        if not dispatch_batch(load, dispatch, ids):
            load.unconfirmed.extend(ids)
        load.events_confirmed = ids.stop - len(load.unconfirmed)
    load.events_end = time.perf_counter()


def progress(load: Load, stop: threading.Event, started: float) -> None:
    while not stop.wait(PROGRESS_EVERY):
        errors = sum(load.errors.values())
        print(
            f"    {time.perf_counter() - started:5.0f} s: {load.calls_done:,}/{load.args.calls:,} "
            f"calls, {load.events_confirmed:,}/{load.args.events:,} events confirmed, "
            f"{errors} errors",
            file=sys.stderr,
            flush=True,
        )


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "mean": None}
    values = sorted(values)

    def at(q: float) -> float:
        return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]

    return {"p50": at(0.50), "p99": at(0.99), "max": values[-1], "mean": sum(values) / len(values)}


def slowest(load: Load, ok: list[int], count: int = 5) -> list[dict[str, float]]:
    """The slowest calls: when they began (wall clock) and how long they took."""
    worst = sorted(ok, key=lambda i: load.latency[i], reverse=True)[:count]
    return [{"id": i, "ms": load.latency[i] * 1000, "began": load.began[i]} for i in worst]


def summary(load: Load, started: float, rss_start: int) -> dict[str, Any]:
    rss_end = vm_rss_kib()  # before the lists below, which are this script's, not the client's
    ok = [i for i, seconds in enumerate(load.latency) if not math.isnan(seconds)]
    lost = [i for i, seconds in enumerate(load.latency) if math.isnan(seconds)]
    retried = {i: n for i, n in enumerate(load.attempts) if n > 1}
    return {
        "calls": load.args.calls,
        "calls_ok": len(ok),
        "lost_calls": lost,
        "retried_calls": retried,  # id -> attempts
        "latency_ms": {
            k: v and v * 1000 for k, v in percentiles([load.latency[i] for i in ok]).items()
        },
        "slowest_calls": slowest(load, ok),
        "calls_s": (load.calls_end or started) - started,
        "events": load.args.events,
        "events_confirmed": load.events_confirmed,
        "unconfirmed_events": load.unconfirmed,
        "event_batches_retried": load.batches_retried,
        "events_s": (load.events_end or started) - started,
        "errors": dict(load.errors),
        "error_samples": load.samples,
        "rss_kib": {"start": rss_start, "end": rss_end},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = {"AMQP_URI": args.broker}
    cluster = ClusterRpcProxy(config, timeout=args.timeout)
    proxy = cluster.start()
    dispatch = event_dispatcher(config, pipeline=True)
    load = Load(args)
    rss_start = vm_rss_kib()
    print("ready", flush=True)
    started = time.perf_counter()
    threads = [threading.Thread(target=rpc_thread, args=(load, proxy)) for _ in range(args.threads)]
    threads.append(threading.Thread(target=event_thread, args=(load, dispatch)))
    stop = threading.Event()
    threading.Thread(target=progress, args=(load, stop, started), daemon=True).start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    result = summary(load, started, rss_start)
    cluster.stop()
    return result


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """Until ``--instances`` pids have answered (UnknownService: not declared yet)."""
    from nameko.exceptions import UnknownService

    config = {"AMQP_URI": args.broker}
    pids: set[int] = set()
    deadline = time.monotonic() + args.timeout
    with ClusterRpcProxy(config, timeout=args.timeout) as proxy:
        while len(pids) < args.instances:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(pids)} instance(s) answered in {args.timeout:g} s")
            try:
                pids.update(
                    reply.result() for reply in [proxy.soak.pid.call_async() for _ in range(20)]
                )
            except UnknownService:
                time.sleep(0.1)
    event_dispatcher(config)(SOURCE, EVENT_TYPE, {"id": -1, "sent": time.time()})
    return {"pids": sorted(pids)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="AMQP URI with the soak's vhost")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8, help="RPC threads sharing one proxy")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC attempt")
    parser.add_argument("--attempts", type=int, default=5, help="per call id and event batch")
    parser.add_argument("--backoff", type=float, default=0.5, help="seconds after a failure")
    parser.add_argument("--batch", type=int, default=100, help="events per flush")
    parser.add_argument("--probe", action="store_true", help="only wait for the instances")
    parser.add_argument("--instances", type=int, default=2, help="--probe: pids to wait for")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = probe(args) if args.probe else run(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
