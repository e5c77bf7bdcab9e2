"""Benchmark shimeji's HTTP entrypoint against nameko 2.14.1 in one run, as ratios.

Both implementations host the same echo service (``_http_service.py``) with
``nameko run``, each on its own free 127.0.0.1 port, and ``wrk`` loads them
in turn. Rows are interleaved (the order flips every repetition) and
repeated; the table shows medians. A bare server (``_bare_http.py``) gives
the floor for the quiet rows. See ``benchmarks/README.md``.

    .venv/bin/python benchmarks/bench_http.py [--quick] [--json FILE]

Exits non-zero when a row got no figure from one of the implementations;
a missed target or a non-zero error count is only reported (the target only by
the full run: ``--quick`` prints figures and ratios without met/MISSED).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _children import Children, run_cleanly
from _table import render

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BARE_SCRIPT = HERE / "_bare_http.py"
AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"  # needed to start, even with no AMQP entrypoint
PATH = "/echo/hi"
TARGET = 2.5  # shimeji/nameko req/s, on every row
READY_TIMEOUT = 30.0  # seconds from spawn until the port answers a GET
STOP_GRACE = 5.0  # seconds between SIGINT and SIGKILL
WRK_SLACK = 30.0  # seconds a wrk run may take beyond its duration


class BenchError(Exception):
    """A measurement could not be made."""


@dataclass(frozen=True)
class Server:
    """A kind of server process: its key in the results and how to start it."""

    key: str
    python: Path  # its interpreter: for the versions in the header
    quiet_only: bool = False  # a floor: it has no access log, so only the quiet rows

    def command(self, config: Path, port: int) -> list[Any]:
        if self.key.startswith("bare"):
            kind = self.key.removeprefix("bare-")
            return [self.python, BARE_SCRIPT, "--port", port, "--server", kind]
        # `nameko run` from the benchmarks dir, with that virtualenv's own CLI
        return [self.python.parent / "nameko", "run", "_http_service", "--config", config]


SHIMEJI = Server("shimeji", ROOT / ".venv" / "bin" / "python")
NAMEKO = Server("nameko", ROOT / ".venv-nameko" / "bin" / "python")
BARE_SITE = Server("bare-site", SHIMEJI.python, quiet_only=True)
BARE_ASYNCIO = Server("bare-asyncio", SHIMEJI.python, quiet_only=True)
IMPLS = (SHIMEJI, NAMEKO)
FLOORS = (BARE_SITE, BARE_ASYNCIO)


@dataclass(frozen=True)
class Plan:
    name: str
    reps: int
    duration: int  # seconds per measured wrk run
    warmup: int  # seconds of wrk per server before its first measured run
    judge_targets: bool = True  # a target column with met/MISSED; not on the quick run's 2 s


QUICK = Plan("quick", reps=1, duration=2, warmup=1, judge_targets=False)
DEFAULT = Plan("default", reps=3, duration=10, warmup=2)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    quiet: bool  # LOGGING with root at WARNING: no access line per request
    threads: int
    connections: int


ROWS = (
    Row("logged", "1. echo, default logging", quiet=False, threads=2, connections=50),
    Row("quiet", "2. echo, quiet logging", quiet=True, threads=2, connections=50),
    Row("single", "3. echo, 1 connection", quiet=True, threads=1, connections=1),
)

QUIET_LOGGING = "LOGGING:\n  version: 1\n  root:\n    level: WARNING\n"


# --- child processes --------------------------------------------------------------------


def tail(path: Path, lines: int = 8) -> str:
    text = path.read_bytes().decode(errors="replace") if path.exists() else ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def free_port() -> int:
    """A port nobody listens on now (a small race with other programs; we accept it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- servers ----------------------------------------------------------------------------


@dataclass
class Running:
    server: Server
    quiet: bool
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    served: int = 0  # responses wrk counted, warm-up included (checked against the log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    @property
    def name(self) -> str:
        return f"{self.server.key} ({'quiet' if self.quiet else 'default logging'})"


def write_config(tmp: Path, port: int, quiet: bool) -> Path:
    path = tmp / f"config-{port}.yaml"
    text = f"AMQP_URI: '{AMQP_URI}'\nWEB_SERVER_ADDRESS: '127.0.0.1:{port}'\n"
    path.write_text(text + (QUIET_LOGGING if quiet else ""))
    return path


def spawn(children: Children, tmp: Path, server: Server, quiet: bool) -> Running:
    port = free_port()
    config = write_config(tmp, port, quiet)
    log = tmp / f"{server.key}-{'quiet' if quiet else 'logged'}-{port}.log"
    # spawn_logged: a file, not a pipe, as the access log would fill and stall an unread pipe
    proc = children.spawn_logged(server.command(config, port), log, cwd=HERE)
    return Running(server, quiet, port, proc, log)


def answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", PATH)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_ready(running: Running) -> None:
    """Poll with a GET until the server answers 200; BenchError if it dies or takes too long."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not answers(running.port):
        if running.proc.poll() is not None:
            raise BenchError(
                f"{running.name} exited with {running.proc.returncode}\n{tail(running.log)}"
            )
        if time.monotonic() > deadline:
            raise BenchError(f"{running.name}: no answer within {READY_TIMEOUT:.0f} s")
        time.sleep(0.02)  # a refused connect returns at once: don't spin


# --- wrk --------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: dict[str, int]

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())


TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # -> ms


def _latency(output: str, percent: int) -> float:
    match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    if not match:
        raise BenchError(f"no {percent}% latency in wrk's output")
    return float(match[1]) * TIME_UNITS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    """Read ``wrk --latency``'s text: the totals, two percentiles and the error lines."""
    totals = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", output, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not totals or not rate:
        raise BenchError(f"could not read wrk's output:\n{output.strip()}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors:(.*)$", output, re.M)
    socket_errors = (
        {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", sockets[1])} if sockets else {}
    )
    return WrkResult(
        requests=int(totals[1]),
        seconds=float(totals[2]) * TIME_UNITS[totals[3]] / 1e3,
        rate=float(rate[1]),
        p50_ms=_latency(output, 50),
        p99_ms=_latency(output, 99),
        non2xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=socket_errors,
    )


def run_wrk(children: Children, url: str, row: Row, seconds: int) -> WrkResult:
    cmd = ["wrk", f"-t{row.threads}", f"-c{row.connections}", f"-d{seconds}s", "--latency", url]
    proc = children.spawn(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=seconds + WRK_SLACK)
    except subprocess.TimeoutExpired:
        children.stop(proc)
        raise BenchError(f"wrk on {url} did not finish") from None
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}: {out.decode(errors='replace').strip()}")
    return parse_wrk(out.decode(errors="replace"))


# --- /proc ------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmHWM for pid {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Make VmHWM start again from the current RSS, so a row's peak is its own."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:  # an old kernel or no permission: the peak is since the start
        return False


# --- measuring --------------------------------------------------------------------------


@dataclass
class Sample:
    row: str
    server: str
    rep: int
    wrk: WrkResult
    peak_rss_mib: float
    cpu_us_per_request: float
    peak_since_start: bool  # clear_refs failed: VmHWM is the process's lifetime peak


@dataclass
class Bench:
    plan: Plan
    tmp: Path
    children: Children
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    log_notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAILED: {message}", file=sys.stderr, flush=True)

    def values(self, row: str, server: str) -> list[Sample]:
        return [s for s in self.samples if s.row == row and s.server == server]


def measure(bench: Bench, running: Running, row: Row, rep: int) -> None:
    """One measured wrk run against ``running``, with its CPU time and peak RSS."""
    pid = running.proc.pid
    if running.proc.poll() is not None:
        raise BenchError(f"{running.name} died\n{tail(running.log)}")
    fresh_peak = reset_peak_rss(pid)
    cpu_before = cpu_seconds(pid)
    result = run_wrk(bench.children, running.url, row, bench.plan.duration)
    cpu = cpu_seconds(pid) - cpu_before
    running.served += result.requests
    per_request = 1e6 * cpu / result.requests if result.requests else float("nan")
    sample = Sample(
        row.key, running.server.key, rep, result, peak_rss_mib(pid), per_request, not fresh_peak
    )
    bench.samples.append(sample)
    print(
        f"    {result.rate:9,.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
        f"  errors {result.errors}  {per_request:.0f} CPU-us/req",
        flush=True,
    )


def start_servers(bench: Bench) -> dict[tuple[str, bool], Running]:
    """One process per implementation and logging setting, plus the floors: all at once,
    then each warmed up with wrk (one at a time, so the warm-ups don't compete)."""
    wanted = [(s, quiet) for s in IMPLS for quiet in (False, True)] + [(f, True) for f in FLOORS]
    started = [spawn(bench.children, bench.tmp, server, quiet) for server, quiet in wanted]
    ready: dict[tuple[str, bool], Running] = {}
    for running in started:
        try:
            wait_ready(running)
            warm = ROWS[1] if running.quiet else ROWS[0]
            running.served += run_wrk(bench.children, running.url, warm, bench.plan.warmup).requests
        except BenchError as exc:
            bench.fail(str(exc))
            continue
        ready[(running.server.key, running.quiet)] = running
    return ready


def ordered(turn: int) -> tuple[Server, ...]:
    """Alternate which implementation goes first; the floors come last."""
    return IMPLS if turn % 2 == 0 else IMPLS[::-1]


def measure_rep(bench: Bench, rep: int) -> None:
    servers = start_servers(bench)
    try:
        for index, row in enumerate(ROWS):
            floors = FLOORS if row.quiet else ()
            for server in (*ordered(rep + index), *floors):
                running = servers.get((server.key, row.quiet))
                if running is None:
                    continue  # its start-up failure is already recorded
                print(f"  rep {rep + 1}/{bench.plan.reps} {row.key}: {server.key}", flush=True)
                try:
                    measure(bench, running, row, rep)
                except BenchError as exc:
                    bench.fail(f"{row.key} {server.key}: {exc}")
    finally:
        stop_servers(bench, list(servers.values()))


def stop_servers(bench: Bench, servers: list[Running]) -> None:
    bench.children.stop(*(r.proc for r in servers))
    for running in servers:
        bench.log_notes += check_log(running)


ACCESS_LINE = re.compile(r'"GET /echo/hi')
TROUBLE = re.compile(r"Traceback|CRITICAL|ERROR|Exception|WARNING|Error:", re.I)
NOISE = re.compile(r"EventletDeprecationWarning")  # nameko 2.14.1's import of eventlet


def check_log(running: Running) -> list[str]:
    """Lines of a server's log that look like trouble, an unusual exit status, and (with the
    access log on) how many access lines it wrote for the responses wrk counted."""
    text = running.log.read_text(errors="replace")
    notes = []
    if running.proc.returncode not in (0, -signal.SIGINT):
        notes.append(f"{running.name}: exit status {running.proc.returncode}")
    trouble = [ln for ln in text.splitlines() if TROUBLE.search(ln) and not NOISE.search(ln)]
    for line in trouble[:5]:
        notes.append(f"{running.name}: log: {line.strip()[:160]}")
    if len(trouble) > 5:
        notes.append(f"{running.name}: ... {len(trouble) - 5} more such lines in its log")
    if running.server.key in ("shimeji", "nameko") and not running.quiet:
        logged = len(ACCESS_LINE.findall(text))
        if logged < running.served:
            notes.append(
                f"{running.name}: {logged:,} access lines for {running.served:,} responses"
            )
    return notes


# --- report -----------------------------------------------------------------------------


def median(samples: list[Sample], get: Any) -> float | None:
    return statistics.median(get(s) for s in samples) if samples else None


def fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def rate_of(bench: Bench, row: Row, server: Server) -> float | None:
    return median(bench.values(row.key, server.key), lambda s: s.wrk.rate)


def errors_of(bench: Bench, row: Row, server: Server) -> str:
    samples = bench.values(row.key, server.key)
    return str(sum(s.wrk.errors for s in samples)) if samples else "n/a"


def throughput_line(bench: Bench, row: Row) -> tuple[str, ...]:
    ours, theirs = rate_of(bench, row, SHIMEJI), rate_of(bench, row, NAMEKO)
    r = ratio(ours, theirs)
    cells = [row.label, fmt(ours), fmt(theirs), fmt(r, ".2f", "x")]
    if bench.plan.judge_targets:
        cells.append("n/a" if r is None else ("met" if r >= TARGET else "MISSED"))
    cells.append(f"{errors_of(bench, row, SHIMEJI)} / {errors_of(bench, row, NAMEKO)}")
    for floor in FLOORS:  # the floors run on the quiet rows only
        bare = rate_of(bench, row, floor) if row.quiet else None
        share = ratio(ours, bare)
        cells += [fmt(bare), fmt(None if share is None else 100 * share, ".0f", "%")]
    return tuple(cells)


COST_COLUMNS = (  # (heading, what of a sample, format): shimeji / nameko / bare Site
    ("p50 ms", lambda s: s.wrk.p50_ms, ".2f"),
    ("p99 ms", lambda s: s.wrk.p99_ms, ".2f"),
    ("peak RSS MiB", lambda s: s.peak_rss_mib, ".1f"),
    ("CPU-us/req", lambda s: s.cpu_us_per_request, ".0f"),
)


def cost_line(bench: Bench, row: Row) -> tuple[str, ...]:
    cells = [row.label]
    for _, get, spec in COST_COLUMNS:
        values = [fmt(median(bench.values(row.key, s.key), get), spec) for s in (*IMPLS, BARE_SITE)]
        cells.append(" / ".join(values[:2] if not row.quiet else values))
    return tuple(cells)


def format_table(head: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    rows = [head, *lines]
    return render(rows, lambda i, _n: i == 0)


def format_report(bench: Bench) -> str:
    head1 = ("row", "shimeji", "nameko", "shimeji/nameko")
    head1 += (f"{TARGET:g}x target",) if bench.plan.judge_targets else ()
    head1 += ("errors", "bare Site", "of floor", "bare asyncio", "of asyncio")
    head2 = ("row", *(heading for heading, _, _ in COST_COLUMNS))
    return "\n".join(
        (
            "req/s (medians); errors: non-2xx + socket errors, shimeji / nameko, all reps;"
            " of floor: shimeji as % of the bare server",
            format_table(head1, [throughput_line(bench, row) for row in ROWS]),
            "",
            "shimeji / nameko / bare Site (medians); peak RSS during the row;"
            " CPU: the server's utime+stime per request",
            format_table(head2, [cost_line(bench, row) for row in ROWS]),
        )
    )


def versions(python: Path) -> dict[str, Any]:
    code = (
        "import importlib.metadata as m, json, platform\n"
        "pkgs = {}\n"
        "for d in ('shimeji', 'nameko', 'werkzeug', 'httptools', 'eventlet'):\n"
        "    try: pkgs[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "if 'shimeji' in pkgs: pkgs.pop('nameko', None)\n"  # shimeji's nameko metadata
        "print(json.dumps({'python': platform.python_version(), 'packages': pkgs}))"
    )
    result = subprocess.run([python, "-c", code], capture_output=True, timeout=60)
    if result.returncode != 0:
        raise BenchError(f"{python}: {result.stderr.decode(errors='replace').strip()}")
    return json.loads(result.stdout)


def wrk_version() -> str:
    result = subprocess.run(["wrk", "-v"], capture_output=True, timeout=10)  # exits 1: that's wrk
    return (result.stdout or result.stderr).decode(errors="replace").splitlines()[0].strip()


def format_header(plan: Plan, found: dict[str, Any]) -> str:
    lines = [
        f"shimeji vs nameko 2.14.1 HTTP benchmark -- {plan.name} mode: {plan.reps} rep(s) of "
        f"{plan.duration} s per run, {plan.warmup} s warm-up per server, medians shown"
    ]
    for key, info in found.items():
        pkgs = ", ".join(f"{name} {ver}" for name, ver in info["packages"].items())
        lines.append(f"  {key:8} Python {info['python']}; {pkgs}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines.append(f"  {wrk_version()}; {os.cpu_count()} CPUs; load average {load}")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one repetition of 2 s runs, no target verdicts (CI)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every sample as JSON")
    return parser.parse_args(argv)


def missing_rows(bench: Bench) -> list[str]:
    return [row.label for row in ROWS if any(not bench.values(row.key, impl.key) for impl in IMPLS)]


def run(args: argparse.Namespace, children: Children, tmp: Path) -> int:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not on the PATH (scripts/ensure-wrk installs it)")
    plan = QUICK if args.quick else DEFAULT
    found = {impl.key: versions(impl.python) for impl in IMPLS}
    print(format_header(plan, found), flush=True)
    bench = Bench(plan, tmp, children)
    started = time.perf_counter()
    for rep in range(plan.reps):
        measure_rep(bench, rep)
    wall = time.perf_counter() - started
    print()
    print(format_report(bench))
    for note in bench.log_notes:
        print(f"note: {note}")
    if not plan.judge_targets:
        print(
            f"target ({TARGET:g}x): not judged in quick mode (short runs); the full run reports it"
        )
    print(f"measured in {wall:.1f} s")
    if args.json:
        write_json(args.json, plan, found, bench, wall)
    missing = missing_rows(bench)
    if missing or bench.failures:
        print(f"{len(bench.failures)} error(s); no figure for: {', '.join(missing) or '-'}")
        for failure in bench.failures:
            print(f"  - {failure.splitlines()[0]}")
    return 1 if missing else 0


def write_json(path: Path, plan: Plan, found: dict[str, Any], bench: Bench, wall: float) -> None:
    data = {
        "plan": asdict(plan),
        "versions": found,
        "target": TARGET if plan.judge_targets else None,
        "rows": [asdict(row) for row in ROWS],
        "samples": [{**asdict(s), "errors": s.wrk.errors} for s in bench.samples],
        "failures": bench.failures,
        "log_notes": bench.log_notes,
        "wall_s": wall,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    children = Children(
        signal.SIGINT, STOP_GRACE
    )  # nameko 2.14.1 under eventlet 0.41 ignores SIGTERM here

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="bench_http_") as tmp:
            status = run(args, children, Path(tmp))
        print(f"total wall time {time.perf_counter() - started:.1f} s")
        return status

    return run_cleanly(body, children, (BenchError,))


if __name__ == "__main__":
    sys.exit(main())
