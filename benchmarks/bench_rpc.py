"""Benchmark shimeji against nameko 2.14.1 in one run, as ratios.

Both implementations host the same services (``_bench_service.py``) with
``nameko run`` in a throwaway RabbitMQ vhost and are driven by the same client
code (``_bench_client.py``) through ``ClusterRpcProxy``, each client under its
own implementation's interpreter. Rows are interleaved (the order flips every
time) and repeated; the table shows medians. See ``benchmarks/README.md``.

    .venv/bin/python benchmarks/bench_rpc.py [--quick] [--json FILE]

Exits non-zero when a row got no figure; a missed target is only reported, and only
by the full run (``--quick`` prints the figures and ratios without pass/MISS).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly
from _table import render

from nameko.utils import sanitize_url  # the banner shows the broker, never its password

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENT = HERE / "_bench_client.py"
RAW_SCRIPT = HERE / "raw_roundtrip.py"  # the raw AMQP floor, written separately
BROKER = "amqp://guest:guest@127.0.0.1:5672"
MAX_WORKERS = 10
CALL_TIMEOUT = 30.0  # seconds, per RPC call in the clients
CLIENT_TIMEOUT = 600.0  # seconds, per client process
STOP_GRACE = 8.0  # seconds between SIGTERM and SIGKILL


class BenchError(Exception):
    """A measurement could not be made."""


@dataclass(frozen=True)
class Impl:
    key: str
    python: Path


SHIMEJI = Impl("shimeji", ROOT / ".venv" / "bin" / "python")
NAMEKO = Impl("nameko", ROOT / ".venv-nameko" / "bin" / "python")
IMPLS = (SHIMEJI, NAMEKO)


@dataclass(frozen=True)
class Plan:
    name: str
    reps: int
    startup_trials: int
    warmup: int
    seq_calls: int
    fanout_calls: int
    thread_calls: tuple[tuple[int, int], ...]  # (client threads, calls per thread)
    payload_calls: tuple[tuple[int, int], ...]  # (payload bytes, sequential calls)
    cpu_calls: int  # the --processes row: a fan-out of this many burn() calls
    cpu_iterations: int = 500_000  # burn()'s loop: about 20 ms of pure Python here
    seed_calls: int = 20
    judge_targets: bool = True  # a target column with pass/MISS; the quick run's N is too small


KIB = 1024
MIB = 1024 * KIB
QUICK = Plan(
    "quick",
    1,
    1,
    warmup=30,
    seq_calls=300,
    fanout_calls=500,
    thread_calls=((1, 100), (4, 50), (8, 40)),
    payload_calls=((64 * KIB, 30), (MIB, 5)),
    cpu_calls=40,
    judge_targets=False,
)
DEFAULT = Plan(
    "default",
    3,
    3,
    warmup=200,
    seq_calls=1500,
    fanout_calls=2000,
    thread_calls=((1, 1000), (4, 400), (8, 250)),
    payload_calls=((64 * KIB, 200), (MIB, 30)),
    cpu_calls=160,
)
PROCESS_COUNTS = (1, 2)  # the --processes row: shimeji with 1 and with 2 processes
PLAIN = "plain"  # the floor's plain py-amqp client (no confirms): the targets' floor
OWN = "shimeji"  # the floor's row for shimeji's own transport (with confirms)
CPU_LINES = (
    ("client", "client CPU per call"),
    ("service", "service CPU per call"),
    ("broker", "broker CPU per call"),
)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    # (against, op, bound): shimeji's figure / "nameko"'s, / the "floor" (the plain
    # py-amqp rate of section vs_floor), or / shimeji's figure on another row (its key)
    targets: tuple[tuple[str, str, float], ...] = ()
    vs_floor: str = ""  # raw round-trip section to compare shimeji's rate with
    vs_row: str = ""  # another row's key: shimeji's figure here / shimeji's there
    required: bool = True  # no figure from either implementation fails the run
    cpu: bool = False  # followed by the client/service/broker CPU-per-call lines


def size_name(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def payload_key(size: int) -> str:
    return f"payload_{size}"


def make_rows(plan: Plan) -> tuple[Row, ...]:
    rows = [
        Row(
            "seq_rate",
            "1. sequential RPC",
            "calls/s",
            True,
            (("nameko", ">=", 2.0), ("floor", ">=", 0.8)),
            vs_floor="serial",
            cpu=True,
        ),
        Row("seq_p50", "   sequential p50 latency", "ms", False),
        Row("seq_p99", "   sequential p99 latency", "ms", False),
        Row(
            "fanout_rate",
            f"2. call_async fan-out ({plan.fanout_calls})",
            "calls/s",
            True,
            (("nameko", ">=", 4.0), ("floor", ">=", 1.2)),
            vs_floor="pipelined",
            cpu=True,
        ),
        # shimeji alone: the client's requests as the floor's are (use_confirms=False,
        # transient), to split the gap to the floor into nameko's contract and our code
        Row(
            "seq_light_rate",
            "1b. sequential, use_confirms=False + transient",
            "calls/s",
            True,
            vs_floor="serial",
            required=False,
            cpu=True,
        ),
        Row(
            "fanout_light_rate",
            "2b. fan-out, use_confirms=False + transient",
            "calls/s",
            True,
            vs_floor="pipelined",
            required=False,
            cpu=True,
        ),
    ]
    for threads, calls in plan.thread_calls:
        bound = {4: 3.5, 8: 3.0}.get(threads)
        rows.append(
            Row(
                f"threads{threads}_rate",
                f"3. {threads} client thread{'s' * (threads > 1)} x {calls}",
                "calls/s",
                True,
                (("nameko", ">=", bound),) if bound else (),
                vs_floor="serial" if threads == 1 else "pipelined",
                cpu=True,
            )
        )
    for size, calls in plan.payload_calls:
        key = payload_key(size)
        label = f"4. echo {size_name(size)} x {calls}"
        rows.append(Row(f"{key}_rate", label, "calls/s", True, cpu=True))
        rows.append(Row(f"{key}_mib", "   MiB/s (request + reply)", "MiB/s", True))
    p1, p2 = (f"cpu_p{n}" for n in PROCESS_COUNTS)
    rows += [
        Row(
            p1,
            f"5. CPU-bound fan-out ({plan.cpu_calls}), --processes 1",
            "calls/s",
            True,
            cpu=True,
        ),
        Row(
            p2,
            "   --processes 2 (nameko: one process)",
            "calls/s",
            True,
            (("cpu_p1", ">=", 1.7),),
            vs_row=p1,
            cpu=True,
        ),
        Row(
            "seed001_wall",
            f"6. seed 001: {plan.seed_calls} x sleep(1), max_workers {MAX_WORKERS}",
            "s",
            False,
        ),
        Row("startup", "7. startup: spawn to first reply", "s", False),
        Row("idle_rss", "8. idle RSS of the service", "MiB", False, (("nameko", "<=", 0.7),)),
        Row("loaded_rss", "   RSS after the load rows (info)", "MiB", False),
    ]
    out: list[Row] = []
    for row in rows:
        out.append(row)
        if row.cpu:
            out += [
                Row(f"{row.key}:cpu_{who}", f"     {label}", "us/call", False, required=False)
                for who, label in CPU_LINES
            ]
    return tuple(out)


@dataclass(frozen=True)
class Scenario:
    name: str  # shown in the progress lines
    client: str  # the client's --scenario
    service: str  # service name prefix (the suffix tells the process apart)
    fields: dict[str, str]  # client result field -> row key
    options: dict[str, int]
    cpu_row: str = ""  # the row whose CPU-per-call lines the client's cpu_us_* fill
    impls: tuple[str, ...] = ("shimeji", "nameko")  # which implementations run it


def make_scenarios(plan: Plan) -> tuple[Scenario, ...]:
    echo_fields = {"calls_per_s": "seq_rate", "p50_ms": "seq_p50", "p99_ms": "seq_p99"}
    scenarios = [
        Scenario(
            "seq",
            "seq",
            "bench_echo",
            echo_fields,
            {"calls": plan.seq_calls, "warmup": plan.warmup},
            "seq_rate",
        ),
        Scenario(
            "fanout",
            "fanout",
            "bench_echo",
            {"calls_per_s": "fanout_rate"},
            {"calls": plan.fanout_calls, "warmup": plan.warmup},
            "fanout_rate",
        ),
    ]
    for name, key, calls in (
        ("seq", "seq_light_rate", plan.seq_calls),
        ("fanout", "fanout_light_rate", plan.fanout_calls),
    ):
        options = {"calls": calls, "warmup": plan.warmup, "unconfirmed": 1}
        scenarios.append(
            Scenario(
                f"{name} unconfirmed",
                name,
                "bench_echo",
                {"calls_per_s": key},
                options,
                key,
                impls=(SHIMEJI.key,),  # nameko 2.14's ClusterRpcProxy takes no such options
            )
        )
    for threads, calls in plan.thread_calls:
        key = f"threads{threads}_rate"
        options = {"calls": calls, "threads": threads, "warmup": plan.warmup}
        scenarios.append(
            Scenario(
                f"threads x{threads}", "threads", "bench_echo", {"calls_per_s": key}, options, key
            )
        )
    for size, calls in plan.payload_calls:
        key = payload_key(size)
        fields = {"calls_per_s": f"{key}_rate", "mib_per_s": f"{key}_mib"}
        options = {"calls": calls, "size": size, "warmup": max(2, calls // 10)}
        scenarios.append(
            Scenario(
                f"echo {size_name(size)}", "payload", "bench_echo", fields, options, f"{key}_rate"
            )
        )
    scenarios.append(
        Scenario(
            "seed001",
            "seed001",
            "greeting_service",
            {"wall_s": "seed001_wall"},
            {"calls": plan.seed_calls},
        )
    )
    return tuple(scenarios)


# --- child processes --------------------------------------------------------------------


class LineReader:
    """Lines from a child's stdout pipe, with a deadline and a process to watch."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buffer = b""

    def readline(self, timeout: float, watch: subprocess.Popen[bytes] | None = None) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if watch is not None and watch.poll() is not None:
                raise BenchError(f"process {watch.pid} exited with {watch.returncode}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"no answer within {timeout:.0f} s")
            readable, _, _ = select.select([self.fd], [], [], min(remaining, 0.05))
            if readable:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise BenchError("client process ended early")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()


def tail(path_or_text: Path | bytes, lines: int = 8) -> str:
    text = path_or_text if isinstance(path_or_text, bytes) else path_or_text.read_bytes()
    return "\n".join("    " + line for line in text.decode(errors="replace").splitlines()[-lines:])


# --- broker -----------------------------------------------------------------------------


def rabbitmqctl(*args: str) -> None:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=120)
    if result.returncode != 0:
        raise BenchError(f"rabbitmqctl {' '.join(args)}: {result.stderr.decode().strip()}")


@contextmanager
def throwaway_vhost(prefix: str = "bench_rpc") -> Iterator[str]:
    """A vhost of this run's own (other benchmarks import it too)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        rabbitmqctl("add_vhost", name)
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        try:
            rabbitmqctl("delete_vhost", name)
        except (BenchError, subprocess.TimeoutExpired) as exc:
            print(f"warning: could not delete vhost {name}: {exc}", file=sys.stderr)


# --- measuring --------------------------------------------------------------------------


@dataclass
class Service:
    impl: Impl
    suffix: str
    proc: subprocess.Popen[bytes]
    log: Path


def find_broker_pid() -> int | None:
    """The RabbitMQ node's pid (the listener on 5672, else the oldest beam.smp), for the
    broker-CPU-per-call lines; None when it cannot be read (those lines say n/a)."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", "sport = :5672"], capture_output=True, text=True, timeout=10
        ).stdout
        if found := re.search(r"pid=(\d+)", out):
            return int(found[1])
    except (OSError, subprocess.SubprocessError):
        pass
    beams = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    start = int((entry / "stat").read_text().rpartition(")")[2].split()[19])
                    beams.append((start, int(entry.name)))
            except (OSError, ValueError, IndexError):
                continue
    return min(beams)[1] if beams else None


@dataclass
class Bench:
    plan: Plan
    broker: str
    tmp: Path
    children: Children
    broker_pid: int | None = None
    floors: list[Floor] = field(default_factory=list)
    floor_errors: list[str] = field(default_factory=list)
    broker_idle: list[float] = field(default_factory=list)  # ms of broker CPU per s, no load
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, row_key: str, impl: Impl, value: float) -> None:
        self.samples.setdefault(row_key, {}).setdefault(impl.key, []).append(value)

    def cpu_pids(self, service_pid: int) -> str:
        pids = f"client=self,service={service_pid}"
        return pids + (f",broker={self.broker_pid}" if self.broker_pid else "")

    def add_result(
        self, scenario_fields: dict[str, str], cpu_row: str, impl: Impl, result: dict
    ) -> None:
        for field_name, row_key in scenario_fields.items():
            self.add(row_key, impl, float(result[field_name]))
        if cpu_row:
            for who, _ in CPU_LINES:
                if f"cpu_us_{who}" in result:
                    self.add(f"{cpu_row}:cpu_{who}", impl, float(result[f"cpu_us_{who}"]))

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAILED: {message}", file=sys.stderr, flush=True)


def ordered(turn: int) -> tuple[Impl, ...]:
    """Alternate which implementation goes first, so neither always gets the warmer broker."""
    return IMPLS if turn % 2 == 0 else IMPLS[::-1]


def impl_env(impl: Impl, **extra: str) -> dict[str, str]:
    """The environment of a child of ``impl``: nameko 2.14.1's never gets PYTHONPATH,
    which points at a shimeji source tree when this runs from a worktree."""
    env = {**os.environ, **extra}
    if impl is not SHIMEJI:
        env.pop("PYTHONPATH", None)
    return env


def client_cmd(bench: Bench, impl: Impl, scenario: str, service: str, **opts: Any) -> list[Any]:
    cmd: list[Any] = [impl.python, CLIENT, "--scenario", scenario, "--broker", bench.broker]
    cmd += ["--service", service, "--timeout", str(CALL_TIMEOUT)]
    for name, value in opts.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    return cmd


def run_client(bench: Bench, impl: Impl, scenario: str, service: str, **opts: Any) -> dict:
    cmd = client_cmd(bench, impl, scenario, service, **opts)
    what = f"{impl.key} {scenario}: client"
    returncode, out, err = run_child(bench, cmd, what, subprocess.PIPE, env=impl_env(impl))
    if returncode != 0 or not out.strip():
        raise BenchError(f"{impl.key} {scenario}: client exited {returncode}\n{tail(err)}")
    return json.loads(out.splitlines()[-1])


def run_child(
    bench: Bench, cmd: list[Any], what: str, stderr: int, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` to completion (stopped, and BenchError, after CLIENT_TIMEOUT)."""
    proc = bench.children.spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env
    )
    try:
        out, err = proc.communicate(timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        bench.children.stop(proc)
        raise BenchError(f"{what} timed out") from None
    return proc.returncode, out, err or b""


def write_config(tmp: Path, broker: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(f"AMQP_URI: '{broker}'\nmax_workers: {MAX_WORKERS}\n")
    return path


def spawn_service(bench: Bench, impl: Impl, suffix: str, *extra: str) -> Service:
    """``nameko run`` with the config file (AMQP_URI, max_workers) and --broker (same URL:
    nameko 2.14 ignores --broker when --config is given, shimeji uses it as a default)."""
    log = bench.tmp / f"service{suffix}.log"
    cmd: list[Any] = [impl.python, "-m", "nameko", "run", "--config", bench.tmp / "config.yaml"]
    cmd += ["--broker", bench.broker, *extra, "_bench_service"]
    env = impl_env(impl, BENCH_SUFFIX=suffix, PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = bench.children.spawn(
            cmd, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    return Service(impl, suffix, proc, log)


def start_timed(bench: Bench, impl: Impl, suffix: str) -> tuple[Service, float]:
    """Spawn ``nameko run`` and time it until a waiting, connected client gets a reply."""
    cmd = client_cmd(bench, impl, "startup", "bench_echo" + suffix, calls=5)
    probe_log = bench.tmp / f"probe{suffix}.log"
    with probe_log.open("wb") as err:
        probe = bench.children.spawn(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=impl_env(impl)
        )
    reader = LineReader(probe)
    service = None
    try:
        if reader.readline(CALL_TIMEOUT, watch=probe) != "ready":
            raise BenchError("startup probe did not get ready")
        start = time.perf_counter()
        service = spawn_service(bench, impl, suffix)
        assert probe.stdin is not None
        probe.stdin.write(b"go\n")
        probe.stdin.flush()
        if reader.readline(CALL_TIMEOUT, watch=service.proc) != "up":
            raise BenchError("startup probe got no reply")
        elapsed = time.perf_counter() - start
        reader.readline(CALL_TIMEOUT, watch=service.proc)  # the few calls after the first
        return service, elapsed
    except BenchError as exc:
        logs = f"  client:\n{tail(probe_log)}"
        if service:
            bench.children.stop(service.proc)
            logs += f"\n  service:\n{tail(service.log)}"
        raise BenchError(f"{impl.key} startup: {exc}\n{logs}") from None
    finally:
        bench.children.stop(probe)
        for pipe in (probe.stdin, probe.stdout):
            if pipe is not None:
                pipe.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def measure_startups(bench: Bench) -> dict[str, Service]:
    """Rows 5 and 6. The last good service of each implementation is kept for the load rows."""
    kept: dict[str, Service] = {}
    for trial in range(bench.plan.startup_trials):
        for impl in ordered(trial):
            print(f"  startup {trial + 1}/{bench.plan.startup_trials}: {impl.key}", flush=True)
            try:
                service, seconds = start_timed(bench, impl, f"_{impl.key}{trial}")
            except BenchError as exc:
                bench.fail(str(exc))
                continue
            bench.add("startup", impl, seconds)
            bench.add("idle_rss", impl, rss_mib(service.proc.pid))
            if impl.key in kept:
                bench.children.stop(kept[impl.key].proc)
            kept[impl.key] = service
    return kept


def measure_load(bench: Bench, services: dict[str, Service]) -> None:
    """The load rows, interleaved and repeated."""
    scenarios = make_scenarios(bench.plan)
    cpu_services = spawn_cpu_services(bench)
    for rep in range(bench.plan.reps):
        broker_background(bench)
        for index, scenario in enumerate(scenarios):
            for impl in ordered(rep + index):
                service = services.get(impl.key)
                if service is None or impl.key not in scenario.impls:
                    continue  # its startup failure is already recorded
                print(f"  rep {rep + 1}/{bench.plan.reps} {scenario.name}: {impl.key}", flush=True)
                if service.proc.poll() is not None:
                    bench.fail(f"{impl.key} service died\n{tail(service.log)}")
                    del services[impl.key]
                    continue
                options: dict[str, Any] = dict(scenario.options)
                if scenario.cpu_row:
                    options["cpu_pids"] = bench.cpu_pids(service.proc.pid)
                try:
                    result = run_client(
                        bench, impl, scenario.client, scenario.service + service.suffix, **options
                    )
                except BenchError as exc:
                    bench.fail(str(exc))
                    continue
                bench.add_result(scenario.fields, scenario.cpu_row, impl, result)
        measure_processes(bench, cpu_services, rep)
        if RAW_SCRIPT.exists():
            measure_floor_rep(bench)
    for service in services.values():
        if service.proc.poll() is None:
            bench.add("loaded_rss", service.impl, rss_mib(service.proc.pid))
    bench.children.stop(*(service.proc for _, _, service in cpu_services))


def spawn_cpu_services(bench: Bench) -> list[tuple[Impl, int, Service]]:
    """The --processes row's services: shimeji with ``--processes 1`` and ``2``, nameko
    (no such option: one process). Their clients wait until every process answers."""
    found = []
    for count in PROCESS_COUNTS:
        suffix = f"_shimeji_p{count}"
        found.append(
            (SHIMEJI, count, spawn_service(bench, SHIMEJI, suffix, "--processes", str(count)))
        )
    found.append((NAMEKO, 1, spawn_service(bench, NAMEKO, "_nameko_cpu")))
    return found


def measure_processes(
    bench: Bench, cpu_services: list[tuple[Impl, int, Service]], rep: int
) -> None:
    """One repetition of the CPU-bound fan-out against each of ``cpu_services``."""
    plan = bench.plan
    for impl, count, service in cpu_services if rep % 2 == 0 else cpu_services[::-1]:
        what = f"{impl.key} --processes {count}" if impl is SHIMEJI else f"{impl.key} (one process)"
        print(f"  rep {rep + 1}/{plan.reps} cpu-bound: {what}", flush=True)
        if service.proc.poll() is not None:
            bench.fail(f"{what}: service exited\n{tail(service.log)}")
            continue
        try:
            result = run_client(
                bench,
                impl,
                "cpu",
                "bench_cpu" + service.suffix,
                calls=plan.cpu_calls,
                iterations=plan.cpu_iterations,
                processes=count,
                cpu_pids=bench.cpu_pids(service.proc.pid),
            )
        except BenchError as exc:
            bench.fail(f"{what}: {exc}\n  service:\n{tail(service.log)}")
            continue
        keys = [f"cpu_p{count}"] if impl is SHIMEJI else [f"cpu_p{n}" for n in PROCESS_COUNTS]
        for key in keys:  # nameko's one process is shown on both rows
            bench.add_result({"calls_per_s": key}, key, impl, result)


@dataclass
class Floor:
    """Raw round-trip rates by section ("serial", "pipelined") and client name."""

    titles: dict[str, str]  # section -> its title line, e.g. "pipelined (16 in flight)"
    rates: dict[str, dict[str, float]]  # section -> client name -> calls/s
    output: str
    # section -> client name -> {"client": µs, "echo": µs} (the plain py-amqp rows)
    cpu: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    runs: int = 1  # repetitions this floor is the median of

    def rate(self, section: str, client: str) -> float | None:
        """The rate of the client whose name starts with ``client`` ("shimeji", "py-amqp")."""
        found = self.rates.get(section) or self.rates.get("serial", {})
        return next((v for k, v in found.items() if k.startswith(client)), None)


FLOOR_ROW = re.compile(
    r"^\s+(?P<name>\S.*?)\s+(?P<rate>[\d.]+)\s+[\d.]+\s+[\d.]+\s*(?:cpu-us/call: (?P<cpu>.*))?$"
)


def parse_floor(output: str) -> Floor:
    """Read raw_roundtrip.py's text tables: an unindented title line per section
    ("serial (1 in flight)"), then indented rows "<client>  <calls/s>  <p50>  <p99>"
    (the plain py-amqp rows end with "cpu-us/call: client N, echo N")."""
    floor = Floor({}, {}, output)
    section = ""
    for line in output.splitlines():
        if line and not line[0].isspace():
            section = line.split()[0].lower()
            floor.titles[section] = line.strip()
        elif match := FLOOR_ROW.match(line):
            floor.rates.setdefault(section, {})[match["name"]] = float(match["rate"])
            if match["cpu"]:
                parts = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)", match["cpu"])}
                floor.cpu.setdefault(section, {})[match["name"]] = parts
    if not floor.rate("serial", "shimeji"):
        raise BenchError(f"could not read raw_roundtrip.py's output:\n{tail(output.encode())}")
    return floor


def merge_floors(floors: list[Floor]) -> Floor | None:
    """The median of each rate and CPU figure over the repetitions' floors."""
    if not floors:
        return None
    merged = Floor(dict(floors[0].titles), {}, floors[-1].output, runs=len(floors))
    for section in floors[0].rates:
        for name in floors[0].rates[section]:
            rates = [f.rates[section][name] for f in floors if name in f.rates.get(section, {})]
            merged.rates.setdefault(section, {})[name] = statistics.median(rates)
            cpus = [f.cpu[section][name] for f in floors if name in f.cpu.get(section, {})]
            if cpus:
                merged.cpu.setdefault(section, {})[name] = {
                    k: statistics.median(c[k] for c in cpus if k in c) for k in cpus[0]
                }
    return merged


def measure_floor_rep(bench: Bench) -> None:
    """One repetition of the floor (between the load rows: the services are idle)."""
    print(f"  raw round trip floor ({len(bench.floors) + len(bench.floor_errors) + 1})", flush=True)
    try:
        floor = measure_floor(bench, bench.plan is QUICK)
    except BenchError as exc:
        bench.floor_errors.append(str(exc))
        bench.fail(str(exc))
        return
    if floor is not None:
        bench.floors.append(floor)


def broker_background(bench: Bench, seconds: float = 1.0) -> None:
    """The broker's CPU use (ms per s) while this benchmark sends nothing."""
    if not bench.broker_pid:
        return
    try:
        before = proc_ticks(bench.broker_pid)
        time.sleep(seconds)
        used = proc_ticks(bench.broker_pid) - before
    except OSError:
        return
    bench.broker_idle.append(used / os.sysconf("SC_CLK_TCK") / seconds * 1000)


def proc_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def measure_floor(bench: Bench, quick: bool) -> Floor | None:
    """The raw AMQP request/reply round trip of shimeji's transport and of py-amqp.

    HOOK: ``benchmarks/raw_roundtrip.py`` is written separately; this runs it under
    shimeji's interpreter (which has both transports) with ``--quick`` passed
    through, and reads its text tables (`parse_floor`). None if it is absent.
    """
    if not RAW_SCRIPT.exists():
        return None
    cmd: list[Any] = [SHIMEJI.python, RAW_SCRIPT, *(["--quick"] if quick else [])]
    returncode, output, _ = run_child(bench, cmd, "raw_roundtrip.py", subprocess.STDOUT)
    if returncode != 0:
        raise BenchError(f"raw_roundtrip.py exited {returncode}\n{tail(output)}")
    return parse_floor(output.decode(errors="replace"))


# --- report -----------------------------------------------------------------------------


@dataclass
class Figure:
    row: Row
    shimeji: float | None
    nameko: float | None
    against: dict[str, float | None] = field(default_factory=dict)  # "floor"/row key -> value

    @property
    def ratio(self) -> float | None:
        if self.shimeji is None or not self.nameko:
            return None
        return self.shimeji / self.nameko

    def ratio_to(self, against: str) -> float | None:
        if against == "nameko":
            return self.ratio
        base = self.against.get(against)
        return self.shimeji / base if self.shimeji is not None and base else None

    def checks(self) -> list[tuple[str, bool | None]]:
        """Each target's text and whether it is met (None: no figure)."""
        out = []
        for against, op, bound in self.row.targets:
            ratio = self.ratio_to(against)
            met = None if ratio is None else (ratio >= bound if op == ">=" else ratio <= bound)
            name = {"nameko": "", "floor": " floor"}.get(against, " 1 proc")
            out.append((f"{op} {bound:g}x{name}", met))
        return out

    @property
    def target_met(self) -> bool | None:
        checks = self.checks()
        if not checks or any(met is None for _, met in checks):
            return None
        return all(met for _, met in checks)


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def figures(bench: Bench, floor: Floor | None) -> list[Figure]:
    out: list[Figure] = []
    for row in make_rows(bench.plan):
        by_impl = bench.samples.get(row.key, {})
        fig = Figure(row, median(by_impl.get("shimeji")), median(by_impl.get("nameko")))
        if row.vs_floor:
            fig.against["floor"] = floor.rate(row.vs_floor, PLAIN) if floor else None
            fig.against["own"] = floor.rate(row.vs_floor, OWN) if floor else None
        if row.vs_row:
            fig.against[row.vs_row] = median(bench.samples.get(row.vs_row, {}).get("shimeji"))
        out.append(fig)
    return out


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("calls/s", "us/call"):
        return f"{value:,.0f}"
    return f"{value:.1f}" if unit in ("MiB", "MiB/s") else f"{value:.2f}"


def versus(fig: Figure) -> str:
    """shimeji's rate / the plain py-amqp floor and / its own transport's; or / another row."""

    def cell(against: str) -> str:
        ratio = fig.ratio_to(against)
        return "n/a" if ratio is None else f"{ratio:.2f}x"

    if fig.row.vs_floor:
        return f"{cell('floor')} plain py-amqp, {cell('own')} own transport"
    if fig.row.vs_row:
        return f"{cell(fig.row.vs_row)} of --processes 1"
    return ""


def table_line(fig: Figure, judge_targets: bool) -> tuple[str, ...]:
    target = ()
    if judge_targets:
        marks = {True: "pass", False: "MISS", None: "n/a"}
        target = (", ".join(f"{text} {marks[met]}" for text, met in fig.checks()),)
    return (
        fig.row.label,
        fig.row.unit,
        "higher" if fig.row.higher_is_better else "lower",
        fmt(fig.shimeji, fig.row.unit),
        fmt(fig.nameko, fig.row.unit),
        "n/a" if fig.ratio is None else f"{fig.ratio:.2f}x",
        *target,
        versus(fig),
    )


def format_table(rows: list[Figure], judge_targets: bool = True) -> str:
    """The table; the target column (pass/MISS) only when ``judge_targets``."""
    head = ("row", "unit", "better", "shimeji", "nameko", "shimeji/nameko")
    head += ("target",) if judge_targets else ()
    lines = [(*head, "shimeji vs floor (same section) / vs 1 process")]
    lines += [table_line(fig, judge_targets) for fig in rows]
    return render(lines, lambda i, n: i < 3 or i == n - 1)


def format_floor(floor: Floor | None, error: str | None) -> str:
    title = "floor: raw AMQP request/reply (benchmarks/raw_roundtrip.py), calls/s"
    if error:
        return f"{title}: FAILED: {error.splitlines()[0]}"
    if floor is None:
        return f"{title}: n/a -- raw_roundtrip.py not present (hook: measure_floor)"
    runs = f"median of {floor.runs} runs, one per repetition" if floor.runs > 1 else "one run"
    lines = [
        f"{title} ({runs}); rows 1 and 3 (1 thread) are compared with 'serial', "
        "rows 2 and 3 (4, 8 threads) with 'pipelined'; 'plain' has no publisher confirms:"
    ]
    for section, rates in floor.rates.items():
        lines.append(f"  {floor.titles[section]}:")
        for name, rate in rates.items():
            cpu = floor.cpu.get(section, {}).get(name)
            text = ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()) if cpu else ""
            lines.append(
                f"    {name:<36} {rate:>7,.0f}" + (f"  (CPU µs/call: {text})" if cpu else "")
            )
    return "\n".join(lines)


def versions(bench: Bench) -> dict[str, Any]:
    found = {}
    for impl in IMPLS:
        try:
            found[impl.key] = run_client(bench, impl, "versions", "-")
        except BenchError as exc:
            bench.fail(str(exc))
    return found


def format_header(plan: Plan, found: dict[str, Any], vhost: str) -> str:
    lines = [
        f"shimeji vs nameko 2.14.1 RPC benchmark -- {plan.name} mode: "
        f"{plan.reps} rep(s), {plan.startup_trials} startup trial(s), medians shown"
    ]
    for key, info in found.items():
        pkgs = ", ".join(f"{name} {ver}" for name, ver in info["packages"].items())
        lines.append(f"  {key:8} Python {info['python']}; {pkgs}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    broker = sanitize_url(f"{BROKER}/{vhost}")
    lines.append(f"  broker {broker}; {os.cpu_count()} CPUs; load average {load}")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, one repetition (CI)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, vhost: str, children: Children, tmp: Path) -> int:
    plan = QUICK if args.quick else DEFAULT
    broker = f"{BROKER}/{vhost}"
    write_config(tmp, broker)
    bench = Bench(plan, broker, tmp, children, find_broker_pid())
    started = time.perf_counter()
    found = versions(bench)
    print(format_header(plan, found, vhost), flush=True)
    services = measure_startups(bench)
    measure_load(bench, services)  # the floor runs once per repetition, between the rows
    children.stop(*(service.proc for service in services.values()))
    floor = merge_floors(bench.floors)
    floor_error = bench.floor_errors[0] if bench.floor_errors and floor is None else None
    rows = figures(bench, floor)
    wall = time.perf_counter() - started
    print()
    print(format_table(rows, plan.judge_targets))
    print(
        "CPU per call: utime+stime over the measured calls / calls, in µs: the client process, "
        "the service process (with its children), the broker "
        + (
            f"(beam.smp pid {bench.broker_pid}: all its work, other users' too; with no "
            f"benchmark traffic it used {median(bench.broker_idle) or 0:.0f} ms of CPU per s)"
            if bench.broker_pid
            else "(not found: n/a)"
        )
    )
    print(format_floor(floor, floor_error))
    if not plan.judge_targets:
        print("targets: not judged in quick mode (too few calls); the full run reports them")
    print(f"measured in {wall:.1f} s")
    missing = [
        f.row.label.strip()
        for f in rows
        if f.row.required and (f.shimeji is None or f.nameko is None)
    ]
    if args.json:
        write_json(args.json, plan, found, rows, floor, bench, wall)
    if missing or bench.failures:
        print(f"FAILED: {len(bench.failures)} error(s); no figure for: {', '.join(missing) or '-'}")
        for failure in bench.failures:
            print(f"  - {failure.splitlines()[0]}")
        return 1
    return 0


def paired_ratios(samples: dict[str, list[float]]) -> list[float] | None:
    """shimeji/nameko per repetition (each pair ran back to back), when the samples pair up."""
    ours, theirs = samples.get("shimeji", []), samples.get("nameko", [])
    if not ours or len(ours) != len(theirs):
        return None
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def write_json(
    path: Path,
    plan: Plan,
    found: dict[str, Any],
    rows: list[Figure],
    floor: Floor | None,
    bench: Bench,
    wall: float,
) -> None:
    data = {
        "plan": asdict(plan),
        "versions": found,
        "rows": [
            {
                "key": f.row.key,
                "label": f.row.label.strip(),
                "unit": f.row.unit,
                "better": "higher" if f.row.higher_is_better else "lower",
                "shimeji": f.shimeji,
                "nameko": f.nameko,
                "ratio": f.ratio,
                "targets": [text for text, _ in f.checks()],
                "target_met": f.target_met if plan.judge_targets else None,
                "vs": {k: f.ratio_to(k) for k in f.against},
                "samples": bench.samples.get(f.row.key, {}),
                "paired_ratios": paired_ratios(bench.samples.get(f.row.key, {})),
            }
            for f in rows
        ],
        "floor": floor and {"rates": floor.rates, "titles": floor.titles, "cpu": floor.cpu},
        "broker_pid": bench.broker_pid,
        "broker_idle_ms_per_s": bench.broker_idle,
        "floor_runs": [{"rates": f.rates, "cpu": f.cpu} for f in bench.floors],
        "failures": bench.failures,
        "wall_s": wall,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    children = Children(signal.SIGTERM, STOP_GRACE)

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="bench_rpc_") as tmp, throwaway_vhost() as vhost:
            status = run(args, vhost, children, Path(tmp))
        print(
            f"total wall time {time.perf_counter() - started:.1f} s (vhost setup and clean-up included)"
        )
        return status

    return run_cleanly(body, children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
