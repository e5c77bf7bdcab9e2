"""Memory per payload: a service's peak RSS while it answers large messages.

Starts ``_memory_service.py`` under shimeji and under nameko 2.14.1 (each in
its own ``nameko run`` process, in a throwaway vhost) and calls it with a
shimeji standalone client from this process. For each payload it reads the
service's RSS before the call, resets the kernel's peak-RSS mark
(``/proc/<pid>/clear_refs``), makes the call and reads the peak
(``VmHWM``): the figure is ``(peak - before) / payload``, i.e. how many
copies of the payload the service held at once. Rows:

* ``result N MiB``: ``make(N MiB)`` returns an N MiB string;
* ``argument 1M objects``: ``count(items)`` with a ~15 MB JSON list of one
  million small objects; also the RSS left after the call.

    .venv/bin/python benchmarks/bench_memory.py            # 1, 16, 64, 127 MiB
    .venv/bin/python benchmarks/bench_memory.py --quick    # 1 and 16 MiB (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_rpc import BROKER, NAMEKO, SHIMEJI, Children, Impl, throwaway_vhost

from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.utils import sanitize_url

HERE = Path(__file__).parent
MiB = 1024 * 1024
TARGET = 3.0  # the goal: peak RSS at most 3x the payload for large bodies
TIMEOUT = 300


def status(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def measure(pid: int, call) -> tuple[float, int, int]:
    """(seconds, peak - before, after - before) of ``call()`` in process ``pid``."""
    before = status(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    started = time.perf_counter()
    call()
    elapsed = time.perf_counter() - started
    return elapsed, status(pid, "VmHWM") - before, status(pid, "VmRSS") - before


def start(children: Children, impl: Impl, broker: str, tmp: Path, suffix: str):
    config = tmp / f"config{suffix}.yaml"
    config.write_text(f"AMQP_URI: '{broker}'\n")
    env = {**os.environ, "BENCH_SUFFIX": suffix, "PYTHONUNBUFFERED": "1"}
    log = open(tmp / f"service{suffix}.log", "wb")  # noqa: SIM115 (closed with the process)
    cmd = [impl.python, "-m", "nameko", "run", "--config", config, "_memory_service"]
    return children.spawn(cmd, cwd=HERE, env=env, stdout=log, stderr=log)


def wait_ready(proxy, name: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            proxy[name].make(1)
            return
        except UnknownService:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a process we started


def rows(sizes: list[int]) -> list[tuple[str, str, object, int]]:
    """(label, method, argument, payload bytes)."""
    result = [(f"result {n} MiB", "make", n * MiB, n * MiB) for n in sizes]
    items = [{"id": i, "name": "n"} for i in range(1_000_000)]
    result.append(("argument 1M objects", "count", items, len(json.dumps(items))))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small payloads only (CI)")
    args = parser.parse_args()
    sizes = [1, 16] if args.quick else [1, 16, 64, 127]
    impls = [SHIMEJI] + ([NAMEKO] if NAMEKO.python.exists() else [])
    children = Children()
    figures: dict[str, dict[str, tuple[float, int, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp, throwaway_vhost() as vhost:
        broker = f"{BROKER}/{vhost}"
        print(f"memory per payload; broker {sanitize_url(broker)}; Python {sys.version.split()[0]}")
        try:
            with ClusterRpcProxy({"AMQP_URI": broker}, timeout=TIMEOUT) as proxy:
                for label, method, arg, _ in rows(sizes):
                    for impl in impls:  # a fresh process per row: nothing left from the last
                        suffix = f"_{impl.key}"
                        proc = start(children, impl, broker, Path(tmp), suffix)
                        wait_ready(proxy, "bench_payload" + suffix)
                        service = proxy["bench_payload" + suffix]
                        call = lambda m=method, a=arg, s=service: getattr(s, m)(a)  # noqa: E731
                        figures.setdefault(label, {})[impl.key] = measure(proc.pid, call)
                        children.stop(proc)
        finally:
            children.stop_all()
    payloads = {label: size for label, _, _, size in rows(sizes)}
    report(figures, payloads, [i.key for i in impls], judge_target=not args.quick)
    return 0


def report(figures, payloads, names, judge_target: bool = True) -> None:
    print(f"\n{'row':22} " + " ".join(f"{n + ' peak/payload':>22} {'s':>6}" for n in names))
    for label, by_impl in figures.items():
        cells = []
        for name in names:
            seconds, peak, _ = by_impl[name]
            cells.append(f"{peak / payloads[label]:>22.3f} {seconds:>6.2f}")
        print(f"{label:22} " + " ".join(cells))
    largest = max((label for label in figures if label.startswith("result")), key=payloads.get)
    ratio = figures[largest]["shimeji"][1] / payloads[largest]
    if judge_target:  # the target is about large payloads: the full run's 127 MiB
        verdict = "met" if ratio <= TARGET else "MISSED"
        print(f"\nshimeji, {largest}: {ratio:.3f}x the payload (target <= {TARGET}x: {verdict})")
    else:
        print(f"\nshimeji, {largest}: {ratio:.3f}x the payload (target judged by the full run)")
    left = {name: figures["argument 1M objects"][name][2] / MiB for name in names}
    print(
        "RSS left after the 1M-object argument, MiB above before: "
        + ", ".join(f"{name} {mib:.0f}" for name, mib in left.items())
    )


if __name__ == "__main__":
    sys.exit(main())
