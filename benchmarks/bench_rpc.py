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

from _children import Children, interrupt

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
    threads: int
    thread_calls: int
    seed_calls: int = 20
    judge_targets: bool = True  # a target column with pass/MISS; the quick run's N is too small


QUICK = Plan(
    "quick",
    1,
    1,
    warmup=30,
    seq_calls=300,
    fanout_calls=500,
    threads=8,
    thread_calls=40,
    judge_targets=False,
)
DEFAULT = Plan(
    "default", 3, 3, warmup=200, seq_calls=1500, fanout_calls=2000, threads=8, thread_calls=250
)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: tuple[str, float] | None = None  # ("<=" or ">=", ratio shimeji/nameko)
    vs_floor: str = ""  # raw round-trip section to compare shimeji's rate with


def make_rows(plan: Plan) -> tuple[Row, ...]:
    return (
        Row("seq_rate", "1. sequential RPC", "calls/s", True, (">=", 2.0), vs_floor="serial"),
        Row("seq_p50", "   sequential p50 latency", "ms", False),
        Row("seq_p99", "   sequential p99 latency", "ms", False),
        Row(
            "fanout_rate",
            f"2. call_async fan-out ({plan.fanout_calls})",
            "calls/s",
            True,
            (">=", 4.0),
            vs_floor="pipelined",
        ),
        Row(
            "threads_rate",
            f"3. {plan.threads} client threads x {plan.thread_calls}",
            "calls/s",
            True,
            (">=", 3.0),
            vs_floor="pipelined",
        ),
        Row(
            "seed001_wall",
            f"4. seed 001: {plan.seed_calls} x sleep(1), max_workers {MAX_WORKERS}",
            "s",
            False,
        ),
        Row("startup", "5. startup: spawn to first reply", "s", False),
        Row("idle_rss", "6. idle RSS of the service", "MiB", False, ("<=", 1.0)),
        Row("loaded_rss", "   RSS after the load rows (info)", "MiB", False),
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    service: str  # service name prefix (the suffix tells the process apart)
    fields: dict[str, str]  # client result field -> row key
    options: dict[str, int]


def make_scenarios(plan: Plan) -> tuple[Scenario, ...]:
    echo_fields = {"calls_per_s": "seq_rate", "p50_ms": "seq_p50", "p99_ms": "seq_p99"}
    return (
        Scenario(
            "seq", "bench_echo", echo_fields, {"calls": plan.seq_calls, "warmup": plan.warmup}
        ),
        Scenario(
            "fanout",
            "bench_echo",
            {"calls_per_s": "fanout_rate"},
            {"calls": plan.fanout_calls, "warmup": plan.warmup},
        ),
        Scenario(
            "threads",
            "bench_echo",
            {"calls_per_s": "threads_rate"},
            {"calls": plan.thread_calls, "threads": plan.threads, "warmup": plan.warmup},
        ),
        Scenario(
            "seed001", "greeting_service", {"wall_s": "seed001_wall"}, {"calls": plan.seed_calls}
        ),
    )


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
def throwaway_vhost() -> Iterator[str]:
    name = f"bench_rpc_{os.getpid()}_{secrets.token_hex(3)}"
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


@dataclass
class Bench:
    plan: Plan
    broker: str
    tmp: Path
    children: Children
    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, row_key: str, impl: Impl, value: float) -> None:
        self.samples.setdefault(row_key, {}).setdefault(impl.key, []).append(value)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAILED: {message}", file=sys.stderr, flush=True)


def ordered(turn: int) -> tuple[Impl, ...]:
    """Alternate which implementation goes first, so neither always gets the warmer broker."""
    return IMPLS if turn % 2 == 0 else IMPLS[::-1]


def client_cmd(bench: Bench, impl: Impl, scenario: str, service: str, **opts: int) -> list[Any]:
    cmd: list[Any] = [impl.python, CLIENT, "--scenario", scenario, "--broker", bench.broker]
    cmd += ["--service", service, "--timeout", str(CALL_TIMEOUT)]
    for name, value in opts.items():
        cmd += [f"--{name}", str(value)]
    return cmd


def run_client(bench: Bench, impl: Impl, scenario: str, service: str, **opts: int) -> dict:
    cmd = client_cmd(bench, impl, scenario, service, **opts)
    returncode, out, err = run_child(bench, cmd, f"{impl.key} {scenario}: client", subprocess.PIPE)
    if returncode != 0 or not out.strip():
        raise BenchError(f"{impl.key} {scenario}: client exited {returncode}\n{tail(err)}")
    return json.loads(out.splitlines()[-1])


def run_child(bench: Bench, cmd: list[Any], what: str, stderr: int) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` to completion (stopped, and BenchError, after CLIENT_TIMEOUT)."""
    proc = bench.children.spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
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


def spawn_service(bench: Bench, impl: Impl, suffix: str) -> Service:
    """``nameko run`` with the config file (AMQP_URI, max_workers) and --broker (same URL:
    nameko 2.14 ignores --broker when --config is given, shimeji uses it as a default)."""
    log = bench.tmp / f"service{suffix}.log"
    cmd: list[Any] = [impl.python, "-m", "nameko", "run", "--config", bench.tmp / "config.yaml"]
    cmd += ["--broker", bench.broker, "_bench_service"]
    env = {**os.environ, "BENCH_SUFFIX": suffix, "PYTHONUNBUFFERED": "1"}
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
        probe = bench.children.spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
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
    """Rows 1 to 4, interleaved and repeated."""
    scenarios = make_scenarios(bench.plan)
    for rep in range(bench.plan.reps):
        for index, scenario in enumerate(scenarios):
            for impl in ordered(rep + index):
                service = services.get(impl.key)
                if service is None:
                    continue  # its startup failure is already recorded
                print(f"  rep {rep + 1}/{bench.plan.reps} {scenario.name}: {impl.key}", flush=True)
                if service.proc.poll() is not None:
                    bench.fail(f"{impl.key} service died\n{tail(service.log)}")
                    del services[impl.key]
                    continue
                try:
                    result = run_client(
                        bench,
                        impl,
                        scenario.name,
                        scenario.service + service.suffix,
                        **scenario.options,
                    )
                except BenchError as exc:
                    bench.fail(str(exc))
                    continue
                for field_name, row_key in scenario.fields.items():
                    bench.add(row_key, impl, float(result[field_name]))
    for service in services.values():
        if service.proc.poll() is None:
            bench.add("loaded_rss", service.impl, rss_mib(service.proc.pid))


@dataclass
class Floor:
    """Raw round-trip rates by section ("serial", "pipelined") and client name."""

    titles: dict[str, str]  # section -> its title line, e.g. "pipelined (16 in flight)"
    rates: dict[str, dict[str, float]]  # section -> client name -> calls/s
    output: str

    def rate(self, section: str, client: str) -> float | None:
        """The rate of the client whose name starts with ``client`` ("shimeji", "py-amqp")."""
        found = self.rates.get(section) or self.rates.get("serial", {})
        return next((v for k, v in found.items() if k.startswith(client)), None)


FLOOR_ROW = re.compile(r"^\s+(?P<name>\S.*?)\s+(?P<rate>[\d.]+)\s+[\d.]+\s+[\d.]+\s*$")


def parse_floor(output: str) -> Floor:
    """Read raw_roundtrip.py's text tables: an unindented title line per section
    ("serial (1 in flight)"), then indented rows "<client>  <calls/s>  <p50>  <p99>"."""
    floor = Floor({}, {}, output)
    section = ""
    for line in output.splitlines():
        if line and not line[0].isspace():
            section = line.split()[0].lower()
            floor.titles[section] = line.strip()
        elif match := FLOOR_ROW.match(line):
            floor.rates.setdefault(section, {})[match["name"]] = float(match["rate"])
    if not floor.rate("serial", "shimeji"):
        raise BenchError(f"could not read raw_roundtrip.py's output:\n{tail(output.encode())}")
    return floor


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

    @property
    def ratio(self) -> float | None:
        if self.shimeji is None or not self.nameko:
            return None
        return self.shimeji / self.nameko

    @property
    def target_met(self) -> bool | None:
        if self.row.target is None or self.ratio is None:
            return None
        op, bound = self.row.target
        return self.ratio >= bound if op == ">=" else self.ratio <= bound


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def figures(bench: Bench) -> list[Figure]:
    out = []
    for row in make_rows(bench.plan):
        by_impl = bench.samples.get(row.key, {})
        out.append(Figure(row, median(by_impl.get("shimeji")), median(by_impl.get("nameko"))))
    return out


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "calls/s":
        return f"{value:,.0f}"
    return f"{value:.1f}" if unit == "MiB" else f"{value:.2f}"


def percent_of_raw(fig: Figure, floor: Floor | None) -> str:
    """shimeji's rate as a % of the raw round trip of its own transport / of py-amqp."""
    if not fig.row.vs_floor:
        return ""
    cells = []
    for client in ("shimeji", "py-amqp"):
        raw = floor.rate(fig.row.vs_floor, client) if floor else None
        cells.append(f"{100 * fig.shimeji / raw:.0f}%" if raw and fig.shimeji else "n/a")
    return " / ".join(cells)


def table_line(fig: Figure, floor: Floor | None, judge_targets: bool) -> tuple[str, ...]:
    target = ()
    if judge_targets:
        mark = {True: "pass", False: "MISS", None: "n/a"}[fig.target_met]
        target = (f"{fig.row.target[0]} {fig.row.target[1]:g}x {mark}" if fig.row.target else "",)
    return (
        fig.row.label,
        fig.row.unit,
        "higher" if fig.row.higher_is_better else "lower",
        fmt(fig.shimeji, fig.row.unit),
        fmt(fig.nameko, fig.row.unit),
        "n/a" if fig.ratio is None else f"{fig.ratio:.2f}x",
        *target,
        percent_of_raw(fig, floor),
    )


def format_table(rows: list[Figure], floor: Floor | None, judge_targets: bool = True) -> str:
    """The table; the target column (pass/MISS) only when ``judge_targets``."""
    head = ("row", "unit", "better", "shimeji", "nameko", "shimeji/nameko")
    head += ("target",) if judge_targets else ()
    lines = [(*head, "% of raw (shimeji/py-amqp)")]
    lines += [table_line(fig, floor, judge_targets) for fig in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) + 1)]
    text = []
    for n, line in enumerate(lines):
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells).rstrip())
        if n == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


def format_floor(floor: Floor | None, error: str | None) -> str:
    title = "floor: raw AMQP request/reply (benchmarks/raw_roundtrip.py), calls/s"
    if error:
        return f"{title}: FAILED: {error.splitlines()[0]}"
    if floor is None:
        return f"{title}: n/a -- raw_roundtrip.py not present (hook: measure_floor)"
    lines = [f"{title}; row 1 is compared with 'serial', rows 2-3 with 'pipelined':"]
    for section, rates in floor.rates.items():
        items = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
        lines.append(f"  {floor.titles[section]}: {items}")
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
    bench = Bench(plan, broker, tmp, children)
    started = time.perf_counter()
    found = versions(bench)
    print(format_header(plan, found, vhost), flush=True)
    services = measure_startups(bench)
    measure_load(bench, services)
    children.stop(*(service.proc for service in services.values()))  # quiet for the floor
    floor, floor_error = None, None
    print("  raw round trip floor", flush=True)
    try:
        floor = measure_floor(bench, args.quick)
    except BenchError as exc:
        floor_error = str(exc)
        bench.fail(floor_error)
    rows = figures(bench)
    wall = time.perf_counter() - started
    print()
    print(format_table(rows, floor, plan.judge_targets))
    print(format_floor(floor, floor_error))
    if not plan.judge_targets:
        print("targets: not judged in quick mode (too few calls); the full run reports them")
    print(f"measured in {wall:.1f} s")
    missing = [f.row.label.strip() for f in rows if f.shimeji is None or f.nameko is None]
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
                "target": f.row.target and f"{f.row.target[0]}{f.row.target[1]:g}",
                "target_met": f.target_met if plan.judge_targets else None,
                "samples": bench.samples.get(f.row.key, {}),
                "paired_ratios": paired_ratios(bench.samples.get(f.row.key, {})),
            }
            for f in rows
        ],
        "floor": floor and {"rates": floor.rates, "titles": floor.titles},
        "failures": bench.failures,
        "wall_s": wall,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, interrupt)
    children = Children(signal.SIGTERM, STOP_GRACE)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_rpc_") as tmp, throwaway_vhost() as vhost:
            try:
                status = run(args, vhost, children, Path(tmp))
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # clean up even on a second Ctrl-C
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                children.stop_all()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"total wall time {time.perf_counter() - started:.1f} s (vhost setup and clean-up included)"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
