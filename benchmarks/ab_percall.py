"""A/B of shimeji source trees: CPU per sequential call, RSS and startup.

Runs the same echo service and client (``_bench_service.py`` and ``_bench_client.py``)
against two or more ``src`` directories, alternating which goes first in each round,
and prints the median of the rounds: client and service CPU time per call (from
``/proc/<pid>/stat``: far steadier than calls/s on a small shared machine), calls/s,
the service's RSS idle and after the load, and start to first reply.

    .venv/bin/python benchmarks/ab_percall.py --rounds 5 base=/tmp/base/src new=src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
VHOST_CTL = "rabbitmqctl"


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _client(src: str, broker: str, scenario: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{HERE}")
    cmd = [sys.executable, str(HERE / "_bench_client.py"), "--scenario", scenario]
    cmd += ["--broker", broker, *extra]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def one(src: str, broker: str, config: Path, calls: int) -> dict[str, float]:
    suffix = "_" + uuid.uuid4().hex[:8]
    service = "bench_echo" + suffix
    env = dict(os.environ, PYTHONPATH=f"{src}{os.pathsep}{HERE}", BENCH_SUFFIX=suffix)
    client = _client(src, broker, "startup", "--service", service, "--calls", "5")
    assert client.stdout is not None and client.stdin is not None
    assert client.stdout.readline().strip() == "ready"
    cmd = [sys.executable, "-m", "nameko", "run", "--config", str(config), "_bench_service"]
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client.stdin.write("go\n")
    client.stdin.flush()
    assert client.stdout.readline().strip() == "up"
    startup = time.perf_counter() - started
    client.wait()
    try:
        idle = _rss_mib(proc.pid)
        pids = f"client=self,service={proc.pid}"
        seq = _client(
            src,
            broker,
            "seq",
            "--service",
            service,
            "--calls",
            str(calls),
            "--warmup",
            "200",
            "--cpu-pids",
            pids,
        )
        out, _ = seq.communicate(timeout=120)
        result = json.loads(out.strip().splitlines()[-1])
        busy = _rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "client_us": result["cpu_us_client"],
        "service_us": result["cpu_us_service"],
        "calls_s": result["calls_per_s"],
        "idle_mib": idle,
        "busy_mib": busy,
        "startup_s": startup,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", help="label=src-dir")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    trees = [t.split("=", 1) for t in args.trees]
    vhost = "ab_" + uuid.uuid4().hex[:8]
    subprocess.run([VHOST_CTL, "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        [VHOST_CTL, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    broker = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yaml"
            config.write_text(f"AMQP_URI: '{broker}'\nmax_workers: 10\n")
            for rnd in range(args.rounds):
                order = trees if rnd % 2 == 0 else trees[::-1]
                for label, src in order:
                    sample = one(str(Path(src).resolve()), broker, config, args.calls)
                    samples[label].append(sample)
                    print(
                        label, json.dumps({k: round(v, 2) for k, v in sample.items()}), flush=True
                    )
    finally:
        subprocess.run([VHOST_CTL, "delete_vhost", vhost], capture_output=True)
    keys = ["client_us", "service_us", "calls_s", "idle_mib", "busy_mib", "startup_s"]
    print("median".ljust(10) + "".join(k.rjust(12) for k in keys))
    for label, rows in samples.items():
        print(
            label.ljust(10)
            + "".join(f"{statistics.median(r[k] for r in rows):12.2f}" for k in keys)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
