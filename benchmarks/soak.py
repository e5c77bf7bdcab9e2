"""Soak: RPC calls and events against two instances of a service, one SIGKILLed
and restarted every few seconds; then count what was lost and duplicated.

Two ``nameko run`` processes of ``_soak_service:SoakService`` (instances A
and B) share its RPC queue and its pooled event-handler queue in a throwaway
vhost; ``_soak_client.py`` (its own process) makes ``--calls`` RPC calls from
8 threads sharing one ``ClusterRpcProxy`` and dispatches ``--events`` events,
retrying timed-out calls with the same id. Every ``--kill-every`` seconds one
instance gets SIGKILL and a new process replaces it (A and B in turn, or
always A with ``--victims one``). The services append every execution to a
file per process; afterwards the script reports lost calls and events (must
be 0: the exit status is 1 otherwise), duplicate executions (expected with
SIGKILL: delivery is at-least-once), latencies, and the RSS of every process.

    .venv/bin/python benchmarks/soak.py            # 100,000 calls + 100,000 events, kill every 20 s
    .venv/bin/python benchmarks/soak.py --quick    # 5,000 + 5,000, kill every 1 s
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly, signal_group
from _table import render
from bench_rpc import BROKER, BenchError, find_broker_pid, tail, throwaway_vhost

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "_soak_client.py"
SERVICE = "_soak_service:SoakService"
SOURCE, EVENT_TYPE = "soak_source", "tick"  # as in _soak_service.py
MAX_WORKERS = 10
READY_TIMEOUT = 30.0  # seconds for an instance to serve after its spawn
STOP_GRACE = 15.0  # seconds between SIGTERM and SIGKILL at the end
POLL = 0.05  # seconds: the main loop's tick
CONNECTED = "INFO nameko.messaging: Connected to"  # `nameko run` has started its services
TROUBLE = ("ERROR", "CRITICAL", "Traceback", "WARNING")  # log lines worth a note


@dataclass(frozen=True)
class Plan:
    calls: int
    events: int
    kill_every: float
    victims: str  # "alternate" (A, B, A, ...) or "one" (always A)
    threads: int
    timeout: float
    attempts: int
    sample_every: float
    drain_timeout: float
    deadline: float  # seconds the client may take before it counts as stuck


def parse_args(argv: list[str] | None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 + 5,000, kill every 1 s (CI)")
    parser.add_argument("--calls", type=int, help="RPC calls (default 100,000)")
    parser.add_argument("--events", type=int, help="events (default 100,000)")
    parser.add_argument("--kill-every", type=float, help="seconds between kills (default 20)")
    parser.add_argument("--victims", choices=("alternate", "one"), default="alternate")
    parser.add_argument("--threads", type=int, default=8, help="client RPC threads")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC attempt")
    parser.add_argument("--attempts", type=int, default=5, help="attempts per call id")
    parser.add_argument(
        "--sample-every", type=float, default=1.0, help="seconds between RSS samples"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=60.0, help="seconds to wait for events"
    )
    args = parser.parse_args(argv)
    size = 5_000 if args.quick else 100_000
    calls = size if args.calls is None else args.calls
    events = size if args.events is None else args.events
    kill_every = args.kill_every or (1.0 if args.quick else 20.0)
    return Plan(
        calls,
        events,
        kill_every,
        args.victims,
        args.threads,
        args.timeout,
        args.attempts,
        args.sample_every,
        args.drain_timeout,
        deadline=120 + (calls + events) / 200,  # a safety valve: a normal run does 2,000+/s
    )


# --- the services' records ------------------------------------------------------------


class Records:
    """What the services wrote to ``<folder>/<pid>.log``, read incrementally."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.offsets: dict[Path, int] = {}
        self.counts = {"r": collections.Counter[int](), "e": collections.Counter[int]()}
        self.first_pid: dict[str, dict[int, int]] = {"r": {}, "e": {}}
        self.same_process_repeats = {"r": 0, "e": 0}  # a repeat in the process that ran it first
        self.event_ms: dict[int, tuple[float, float]] = {}  # first handling: (latency, sent)
        self.per_pid: dict[int, collections.Counter[str]] = {}

    def has(self, pid: int) -> bool:
        return (self.folder / f"{pid}.log").exists()

    def refresh(self) -> None:
        for path in sorted(self.folder.glob("*.log")):
            offset = self.offsets.get(path, 0)
            with path.open("rb") as records:
                records.seek(offset)
                chunk = records.read()
            end = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self.offsets[path] = offset + end
            pid = int(path.stem)
            for line in chunk[:end].decode().splitlines():
                self._add(pid, line.split())

    def _add(self, pid: int, fields: list[str]) -> None:
        kind = fields[0]
        self.per_pid.setdefault(pid, collections.Counter())[kind] += 1
        if kind == "p":
            return
        ident = int(fields[1])
        self.counts[kind][ident] += 1
        first = self.first_pid[kind].setdefault(ident, pid)
        if self.counts[kind][ident] > 1 and first == pid:
            self.same_process_repeats[kind] += 1
        if kind == "e" and ident not in self.event_ms:
            self.event_ms[ident] = float(fields[2]), float(fields[3])


# --- processes and their RSS ----------------------------------------------------------


def vm_rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid``; None once it has exited (a zombie has no VmRSS line)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


@dataclass
class Tracked:
    """One process whose RSS is sampled: the client, one incarnation of an
    instance, or the broker."""

    label: str
    pid: int
    spawned: float
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    ready: float | None = None  # serving (client: connected); RSS "start" is taken from here
    ended: float | None = None
    how: str = "running"
    samples: list[tuple[float, int]] = field(default_factory=list)

    def sample(self) -> None:
        kib = vm_rss_kib(self.pid)
        if kib is not None and self.ended is None:
            self.samples.append((time.monotonic(), kib))

    def rss_mib(self) -> tuple[float | None, float, float] | None:
        """(start, peak, end) in MiB; start is the first sample once ready
        (None if it never got ready), peak and end cover every sample."""
        if not self.samples:
            return None
        start = next((kib for t, kib in self.samples if self.ready and t >= self.ready), None)
        kib = [k for _, k in self.samples]
        return (None if start is None else start / 1024), max(kib) / 1024, kib[-1] / 1024


class Sampler:
    """Samples every tracked process's RSS from a thread of its own."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.lock = threading.Lock()
        self.tracked: list[Tracked] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def add(self, tracked: Tracked) -> Tracked:
        with self.lock:
            self.tracked.append(tracked)
        tracked.sample()
        return tracked

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            with self.lock:
                for tracked in self.tracked:
                    tracked.sample()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)


# --- the two instances ----------------------------------------------------------------


@dataclass
class Fleet:
    """Instances A and B: their current incarnations, spawning and killing."""

    plan: Plan
    tmp: Path
    children: Children
    sampler: Sampler
    records: Records
    current: dict[str, Tracked] = field(default_factory=dict)
    incarnations: list[Tracked] = field(default_factory=list)
    killed: int = 0
    kill_log: list[tuple[float, str]] = field(default_factory=list)  # (wall clock, victim)
    # seconds from each SIGKILL to its replacement serving
    recoveries: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def spawn(self, slot: str) -> Tracked:
        number = sum(1 for t in self.incarnations if t.label.startswith(slot)) + 1
        log = self.tmp / f"{slot}{number}.log"
        cmd = [sys.executable, "-m", "nameko", "run", "--config", self.tmp / "config.yaml", SERVICE]
        env = {**os.environ, "SOAK_RECORDS": str(self.tmp / "records")}
        proc = self.children.spawn_logged(cmd, log, env=env, cwd=HERE)
        tracked = Tracked(f"{slot}#{number}", proc.pid, time.monotonic(), proc, log)
        self.incarnations.append(tracked)
        self.current[slot] = self.sampler.add(tracked)
        return tracked

    def wait_ready(self, tracked: Tracked, load_done: threading.Event) -> bool:
        """Until ``tracked`` has executed something (its records file exists);
        False if it did not in time, or the load ended first (so no message
        may come its way)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not load_done.is_set():
            if self.records.has(tracked.pid):
                tracked.ready = time.monotonic()
                return True
            if tracked.proc is not None and tracked.proc.poll() is not None:
                break
            time.sleep(POLL / 5)
        return False

    def kill_and_replace(self, slot: str, load_done: threading.Event) -> None:
        victim = self.current[slot]
        victim.sample()  # its last RSS, right before the kill
        assert victim.proc is not None
        signal_group(victim.proc, signal.SIGKILL)
        victim.proc.wait()
        killed_at = time.monotonic()
        victim.ended, victim.how = killed_at, "SIGKILL"
        self.kill_log.append((time.time(), victim.label))
        self.killed += 1
        replacement = self.spawn(slot)
        if self.wait_ready(replacement, load_done):
            self.recoveries.append(time.monotonic() - killed_at)
            print(
                f"    SIGKILL {victim.label} (pid {victim.pid}); {replacement.label} "
                f"(pid {replacement.pid}) serving {self.recoveries[-1]:.2f} s later",
                file=sys.stderr,
                flush=True,
            )
        elif not load_done.is_set():
            self.failures.append(f"{replacement.label} did not serve within {READY_TIMEOUT:.0f} s")

    def replace_dead(self, load_done: threading.Event) -> None:
        """An instance that exited by itself is a finding: note it, start another."""
        for slot, tracked in list(self.current.items()):
            assert tracked.proc is not None
            if tracked.proc.poll() is not None and tracked.ended is None:
                tracked.ended, tracked.how = time.monotonic(), f"exit {tracked.proc.returncode}"
                why = f"{tracked.label} exited by itself ({tracked.proc.returncode})"
                self.failures.append(f"{why}\n{tail(tracked.log or Path())}")
                self.wait_ready(self.spawn(slot), load_done)

    def wait_connected(self, tracked: Tracked) -> None:
        """Until a replacement that never got work (the load ended as it
        started) has connected: SIGTERM before its handlers are installed
        would kill it, which says nothing about a graceful stop."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and tracked.proc and tracked.proc.poll() is None:
            if tracked.log and CONNECTED in tracked.log.read_text(errors="replace"):
                return
            time.sleep(POLL)

    def stop(self) -> None:
        """SIGTERM (graceful) to the current incarnations; their exit status."""
        live = list(self.current.values())
        for tracked in live:
            if tracked.ready is None:
                self.wait_connected(tracked)
            tracked.sample()
        self.children.stop(*(t.proc for t in live if t.proc is not None))
        for tracked in live:
            assert tracked.proc is not None
            tracked.ended = time.monotonic()
            tracked.how = f"SIGTERM, exit {tracked.proc.returncode}"
            if tracked.proc.returncode != 0:
                self.failures.append(f"{tracked.label} exited {tracked.proc.returncode} on SIGTERM")


def write_config(tmp: Path, broker: str) -> None:
    """YAML is a superset of JSON. Log lines carry their level, so that the
    notes after the table can pick out warnings and errors."""
    config = {
        "AMQP_URI": broker,
        "max_workers": MAX_WORKERS,
        "LOGGING": {
            "version": 1,
            "formatters": {"levelled": {"format": "%(levelname)s %(name)s: %(message)s"}},
            "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "levelled"}},
            "root": {"level": "INFO", "handlers": ["out"]},
        },
    }
    (tmp / "config.yaml").write_text(json.dumps(config, indent=2))
    (tmp / "records").mkdir()


def start_fleet(fleet: Fleet, broker: str) -> None:
    """A and B up, each having answered ``pid()``, and the event queue bound
    (the probe event was handled): events sent before that would go nowhere.
    The probing is done by a child (``_soak_client.py --probe``): a connection
    of this process's own would outlive the vhost."""
    for slot in ("A", "B"):
        fleet.spawn(slot)
    cmd: list[Any] = [sys.executable, CLIENT, "--probe", "--broker", broker]
    cmd += ["--timeout", READY_TIMEOUT]
    probe = fleet.children.spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _, err = probe.communicate(timeout=READY_TIMEOUT * 2)
    except subprocess.TimeoutExpired:
        fleet.children.stop(probe)
        err = b"(timed out)"
    if probe.returncode != 0:
        logs = "".join(f"\n  {t.label}:\n{tail(t.log or Path())}" for t in fleet.current.values())
        raise BenchError(f"the instances did not start:\n{tail(err)}{logs}")
    never = threading.Event()
    for tracked in fleet.current.values():
        if not fleet.wait_ready(tracked, never):
            raise BenchError(f"{tracked.label} did not serve")
    deadline = time.monotonic() + READY_TIMEOUT
    while -1 not in fleet.records.counts["e"]:
        if time.monotonic() > deadline:
            raise BenchError("the probe event was not handled")
        fleet.records.refresh()
        time.sleep(POLL)


# --- the client ---------------------------------------------------------------------------


@dataclass
class Client:
    proc: subprocess.Popen[bytes]
    tracked: Tracked
    ready: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None

    def read(self) -> None:
        """The client's stdout: ``ready``, then one JSON line."""
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode().strip()
            if line == "ready":
                self.ready.set()
            elif line.startswith("{"):
                self.result = json.loads(line)
        self.done.set()


def start_client(plan: Plan, broker: str, children: Children, sampler: Sampler) -> Client:
    cmd: list[Any] = [sys.executable, CLIENT, "--broker", broker, "--calls", plan.calls]
    cmd += ["--events", plan.events, "--threads", plan.threads, "--timeout", plan.timeout]
    cmd += ["--attempts", plan.attempts]
    proc = children.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    client = Client(proc, sampler.add(Tracked("client", proc.pid, time.monotonic(), proc)))
    threading.Thread(target=client.read, name="client-stdout", daemon=True).start()
    if not client.ready.wait(READY_TIMEOUT):
        raise BenchError("the client did not connect")
    client.tracked.ready = time.monotonic()
    return client


# --- the run ------------------------------------------------------------------------------


@dataclass
class Run:
    plan: Plan
    fleet: Fleet
    client: Client
    started: float
    stuck: bool = False
    drained: float = 0.0

    def victim(self) -> str:
        if self.plan.victims == "one":
            return "A"
        return "AB"[self.fleet.killed % 2]


def drive(run: Run) -> None:
    """Kill and replace an instance every ``kill_every`` s until the client ends."""
    next_kill = run.started + run.plan.kill_every
    deadline = run.started + run.plan.deadline
    while not run.client.done.wait(POLL):
        now = time.monotonic()
        if now > deadline:
            run.stuck = True
            break
        if now >= next_kill:
            run.fleet.kill_and_replace(run.victim(), run.client.done)
            next_kill = time.monotonic() + run.plan.kill_every  # from the replacement's readiness
        run.fleet.replace_dead(run.client.done)
    if run.stuck:
        run.fleet.children.stop(run.client.proc)
    run.client.proc.wait()
    run.client.tracked.ended = time.monotonic()
    run.client.tracked.how = f"exit {run.client.proc.returncode}"
    if run.client.result:
        rss = run.client.result["rss_kib"]  # its own first and last word on its RSS
        run.client.tracked.samples.insert(0, (run.client.tracked.ready or 0.0, rss["start"]))
        run.client.tracked.samples.append((time.monotonic(), rss["end"]))


def confirmed_events(plan: Plan, result: dict[str, Any]) -> set[int]:
    return set(range(plan.events)) - set(result["unconfirmed_events"])


def lost_events(plan: Plan, result: dict[str, Any], records: Records) -> list[int]:
    """Confirmed to the client, never handled by either instance."""
    return sorted(i for i in confirmed_events(plan, result) if not records.counts["e"][i])


def drain(run: Run, records: Records) -> None:
    """Wait until every confirmed event has been handled (or the drain timeout)."""
    result = run.client.result
    wanted = confirmed_events(run.plan, result) if result else set()
    deadline = time.monotonic() + run.plan.drain_timeout
    while True:
        records.refresh()
        if all(records.counts["e"][i] for i in wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    run.drained = time.monotonic()


# --- analysis and report ----------------------------------------------------------------


def percentiles(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    values = sorted(values)
    at = lambda q: values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]  # noqa: E731
    return at(0.50), at(0.99), values[-1]


def ms3(triple: tuple[float, float, float] | dict[str, Any] | None) -> str:
    if not triple:
        return "n/a"
    values = (triple["p50"], triple["p99"], triple["max"]) if isinstance(triple, dict) else triple
    if values[0] is None:
        return "n/a"
    return " / ".join(f"{v:,.1f}" for v in values)


def repeats(counts: collections.Counter[int]) -> tuple[int, dict[int, int]]:
    """(ids seen more than once, {times seen: ids})."""
    extra = collections.Counter(n for i, n in counts.items() if n > 1 and i >= 0)
    return sum(extra.values()), dict(sorted(extra.items()))


def repeats_cell(counts: collections.Counter[int], same_process: int) -> str:
    ids, histogram = repeats(counts)
    if not ids:
        return "0"
    shape = ", ".join(f"{ids_n:,} x{times}" for times, ids_n in histogram.items())
    return f"{ids:,} ids ({shape}); {same_process} in the same process"


def rpc_rows(run: Run, records: Records, result: dict[str, Any]) -> list[list[str]]:
    counts = records.counts["r"]
    retried = {int(i): n for i, n in result["retried_calls"].items()}
    ids, _ = repeats(counts)
    after_retry = sum(1 for i in retried if counts[i] > 1)
    lost = result["lost_calls"]
    no_result = set(lost)
    unrecorded = [i for i in range(run.plan.calls) if i not in no_result and not counts[i]]
    rate = result["calls"] / result["calls_s"] if result["calls_s"] else 0.0
    return [
        ["RPC calls", f"{result['calls']:,}"],
        [
            "  lost: no result after retries",
            f"{len(lost):,}" + (f" (ids {lost[:10]})" if lost else ""),
        ],
        ["  ok but never executed", f"{len(unrecorded):,}"],
        ["  retried by the client", f"{len(retried):,} calls"],
        ["  executed more than once", repeats_cell(counts, records.same_process_repeats["r"])],
        ["    of which after a client retry", f"{after_retry:,} of {ids:,}"],
        ["  latency p50 / p99 / max, ms", ms3(result["latency_ms"])],
        ["  throughput, calls/s", f"{rate:,.0f}"],
    ]


def event_rows(run: Run, records: Records, result: dict[str, Any]) -> list[list[str]]:
    counts = records.counts["e"]
    confirmed = confirmed_events(run.plan, result)
    lost = lost_events(run.plan, result, records)
    latencies = [ms for i, (ms, _) in records.event_ms.items() if i >= 0]
    rate = result["events"] / result["events_s"] if result["events_s"] else 0.0
    return [
        ["events", f"{result['events']:,}"],
        [
            "  confirmed",
            f"{len(confirmed):,} ({result['event_batches_retried']} batches sent again)",
        ],
        [
            "  lost: confirmed, never handled",
            f"{len(lost):,}" + (f" (ids {lost[:10]})" if lost else ""),
        ],
        ["  handled more than once", repeats_cell(counts, records.same_process_repeats["e"])],
        ["  end to end p50 / p99 / max, ms", ms3(percentiles(latencies))],
        ["  dispatch rate (confirmed), events/s", f"{rate:,.0f}"],
    ]


def run_rows(run: Run, result: dict[str, Any]) -> list[list[str]]:
    kills = run.fleet.recoveries
    who = "always A" if run.plan.victims == "one" else "A and B in turn"
    back = f"{sum(kills) / len(kills):.2f} / {max(kills):.2f}" if kills else "n/a"
    wall = run.drained - run.started
    total = result["calls"] + result["events"]
    errors = ", ".join(f"{name} {n:,}" for name, n in sorted(result["errors"].items())) or "none"
    return [
        ["SIGKILLs", f"{run.fleet.killed}, every {run.plan.kill_every:g} s, {who}"],
        ["  kill to replacement serving, mean / max, s", back],
        ["errors seen by the client (each retried)", errors],
        ["wall time (load + event drain), s", f"{wall:.1f}"],
        ["calls + events per s over the wall time", f"{total / wall:,.0f}" if wall else "n/a"],
    ]


def rss_rows(run: Run, records: Records) -> list[list[str]]:
    head = ["process", "pid", "lived s", "ended", "start MiB", "peak MiB", "end MiB", "growth MiB"]
    head += ["calls run", "events handled"]
    rows = [head]
    for tracked in [run.client.tracked, *run.fleet.incarnations, *broker_tracked(run)]:
        lived = (tracked.ended or time.monotonic()) - tracked.spawned
        did = records.per_pid.get(tracked.pid, collections.Counter())
        service = tracked in run.fleet.incarnations
        cells = [tracked.label, str(tracked.pid), f"{lived:.1f}", tracked.how]
        cells += rss_cells(tracked.rss_mib())
        cells += [f"{did['r']:,}", f"{did['e']:,}"] if service else ["", ""]
        rows.append(cells)
    return rows


def rss_cells(mib: tuple[float | None, float, float] | None) -> list[str]:
    if mib is None:
        return ["n/a"] * 4
    start, peak, end = mib
    if start is None:
        return ["n/a", f"{peak:.1f}", f"{end:.1f}", "n/a"]
    return [f"{start:.1f}", f"{peak:.1f}", f"{end:.1f}", f"{end - start:+.1f}"]


def broker_tracked(run: Run) -> list[Tracked]:
    return [t for t in run.fleet.sampler.tracked if t.label.startswith("rabbitmq")]


def kill_during(kill_log: list[tuple[float, str]], began: float, ms: float) -> str:
    """Where a call or an event was in time against the latest SIGKILL before its end."""
    before = [(at, label) for at, label in kill_log if at <= began + ms / 1000]
    if not before:
        return "before the first SIGKILL"
    at, label = before[-1]
    return f"began {began - at:+.2f} s from the SIGKILL of {label}"


def slowest_notes(run: Run, records: Records, result: dict[str, Any]) -> list[str]:
    """The slowest calls and events, and whether a kill explains them."""
    kills = run.fleet.kill_log
    calls = [(c["ms"], c["began"]) for c in result["slowest_calls"]]
    events = sorted((v for i, v in records.event_ms.items() if i >= 0), reverse=True)[:5]
    notes = []
    for what, worst in (("calls", calls), ("events", events)):
        cells = [f"{ms:,.0f} ms ({kill_during(kills, began, ms)})" for ms, began in worst]
        if cells:
            notes.append(f"slowest {what}: " + "; ".join(cells))
    return notes


def log_notes(fleet: Fleet) -> list[str]:
    """Lines that look like trouble in the instances' logs, a few of each kind."""
    notes, seen = [], collections.Counter[str]()
    for tracked in fleet.incarnations:
        if tracked.log is None:
            continue
        for line in tracked.log.read_text(errors="replace").splitlines():
            kind = next((k for k in TROUBLE if k in line), None)
            if kind:
                seen[kind] += 1
                if seen[kind] <= 3:
                    notes.append(f"{tracked.label}: {line.strip()[:160]}")
    if seen:
        notes.insert(0, "log lines: " + ", ".join(f"{k} {n}" for k, n in seen.items()))
    return notes


def report(run: Run, records: Records) -> int:
    result = run.client.result
    failures = list(run.fleet.failures)
    if run.stuck:
        failures.append(f"the client had not finished after {run.plan.deadline:.0f} s: calls stuck")
    if result is None:
        failures.append(f"the client exited {run.client.proc.returncode} without a result")
        print("\n".join(f"FAILED: {f}" for f in failures))
        return 1
    left = lambda i, n: i == 0  # noqa: E731
    print()
    print(
        render(
            [
                ["outcome", "value"],
                *rpc_rows(run, records, result),
                *event_rows(run, records, result),
                *run_rows(run, result),
            ],
            left,
        )
    )
    print()
    print(
        f"RSS (VmRSS from /proc/<pid>/status every {run.plan.sample_every:g} s; start = once serving)"
    )
    print(render(rss_rows(run, records), lambda i, n: i in (0, 3)))
    if not run.fleet.killed:
        print(f"note: no SIGKILL: the load ended within {run.plan.kill_every:g} s")
    for note in [*slowest_notes(run, records, result), *log_notes(run.fleet)]:
        print(f"note: {note}")
    for name, texts in result["error_samples"].items():
        print(f"note: client {name}: {'; '.join(texts)}")
    lost = len(result["lost_calls"]) + len(lost_events(run.plan, result, records))
    if lost:
        failures.append(f"{lost} lost (calls without a result, confirmed events never handled)")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


def format_header(plan: Plan, vhost: str) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"soak: {plan.calls:,} calls ({plan.threads} threads, {plan.timeout:g} s timeout, "
        f"{plan.attempts} attempts) + {plan.events:,} events; two instances of "
        f"{SERVICE} (max_workers {MAX_WORKERS}); SIGKILL every {plan.kill_every:g} s\n"
        f"  vhost {vhost}; {os.cpu_count()} CPUs; load average {load}"
    )


def soak(plan: Plan, vhost: str, children: Children, tmp: Path) -> int:
    broker = f"{BROKER}/{vhost}"
    write_config(tmp, broker)
    print(format_header(plan, vhost), flush=True)
    sampler = Sampler(plan.sample_every)
    records = Records(tmp / "records")
    fleet = Fleet(plan, tmp, children, sampler, records)
    sampler.thread.start()
    try:
        start_fleet(fleet, broker)
        print("  A and B serving; load starts", flush=True)
        client = start_client(plan, broker, children, sampler)
        run = Run(plan, fleet, client, time.monotonic())
        if (broker_pid := find_broker_pid()) is not None:
            sampler.add(Tracked("rabbitmq (beam.smp)", broker_pid, run.started, ready=run.started))
        drive(run)
        drain(run, records)
        fleet.stop()
        records.refresh()
    finally:
        sampler.stop()
    return report(run, records)


def main(argv: list[str] | None = None) -> int:
    plan = parse_args(argv)
    started = time.perf_counter()
    children = Children(signal.SIGTERM, STOP_GRACE)

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="soak_") as tmp, throwaway_vhost("soak") as vhost:
            try:
                status = soak(plan, vhost, children, Path(tmp))
            finally:
                children.stop_all()  # before the vhost goes, so nothing reconnects to it
        print(f"total {time.perf_counter() - started:.1f} s (vhost setup and clean-up included)")
        return status

    return run_cleanly(body, children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
