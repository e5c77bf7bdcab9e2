"""Which HTTP server under ``@http``? The candidates of docs/architecture.md D19.

Every candidate serves the same WSGI app (werkzeug Request, one routing rule,
Response: the framework cost is equal, only the server differs) in a child
process; wrk drives it with 50 connections and with one, and a slowloris
probe checks whether 60 trickling clients keep a normal request out. Needs a
virtualenv with the candidates (not shimeji's dependencies):

    python3.11 -m venv /tmp/cand && /tmp/cand/bin/pip install waitress cheroot \\
        uvicorn granian a2wsgi werkzeug httptools -e .
    /tmp/cand/bin/python benchmarks/http_candidates.py [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

CANDIDATES = ["shimeji-site", "waitress", "cheroot", "uvicorn+a2wsgi", "granian"]


def app(environ, start_response):  # the app every candidate serves
    from werkzeug.routing import Map, Rule
    from werkzeug.wrappers import Request, Response

    global _map
    if "_map" not in globals():
        _map = Map([Rule("/echo/<value>", endpoint="echo")])
    request = Request(environ)
    _, values = _map.bind_to_environ(request.environ).match()
    return Response(values["value"], mimetype="text/plain")(environ, start_response)


def serve(name: str, port: int) -> None:
    """The child: serve ``app`` with candidate ``name`` on ``port`` until killed."""
    if name == "waitress":
        import waitress

        waitress.serve(app, host="127.0.0.1", port=port, threads=10, _quiet=True)
    elif name == "cheroot":
        from cheroot.wsgi import Server

        Server(("127.0.0.1", port), app, numthreads=10).start()
    elif name == "uvicorn+a2wsgi":
        import uvicorn
        from a2wsgi import WSGIMiddleware

        asgi = WSGIMiddleware(app, workers=10)
        uvicorn.run(
            asgi,
            host="127.0.0.1",
            port=port,
            http="httptools",
            access_log=False,
            log_level="warning",
        )
    elif name == "shimeji-site":
        _serve_site(port)


def _serve_site(port: int) -> None:
    from nameko._concurrency import Event
    from nameko._web.addresses import BindAddress
    from nameko._web.limits import WebLimits
    from nameko._web.site import Reply, Site
    from nameko._web.wsgi import build_environ, call_wsgi

    def handler(request, peer, takeover, target):
        environ = build_environ(request, ("127.0.0.1", port), peer)
        _, data = call_wsgi(app, environ, request.keep_alive)
        return Reply(data, request.keep_alive)

    Site(BindAddress("127.0.0.1", port), WebLimits(), handler, lambda request: (None, None)).start()
    Event().wait()


def start(name: str, port: int) -> subprocess.Popen:
    here = Path(__file__).resolve().parent
    if name == "granian":
        cmd = [
            str(Path(sys.executable).parent / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--blocking-threads",
            "10",
            "--log-level",
            "warning",
            "http_candidates:app",
        ]
    else:
        cmd = [sys.executable, __file__, "--serve", name, "--port", str(port)]
    return subprocess.Popen(
        cmd, cwd=here, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/echo/x", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)  # polling a child that is starting: no event to wait on
    raise RuntimeError(f"port {port} never answered")


def wrk(port: int, connections: int, seconds: int) -> dict[str, float]:
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            f"http://127.0.0.1:{port}/echo/hi",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = sum(
        int(n)
        for n in re.findall(
            r"(?:Non-2xx or 3xx responses|connect|read|write|timeout)[: ]+(\d+)", out
        )
    )
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "errors": errors,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def slowloris(port: int, clients: int = 60) -> str:
    """Do 60 clients trickling headers keep a normal GET out for 2 s?"""
    socks = []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /echo/x HTTP/1.1\r\n")
        socks.append(s)
    try:
        for s in socks:
            s.sendall(b"X")
        started = time.monotonic()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/echo/ok", timeout=2).read()
            return f"served in {1000 * (time.monotonic() - started):.0f} ms"
        except OSError:
            return "NOT served within 2 s"
    finally:
        for s in socks:
            s.close()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(name: str, seconds: int) -> dict[str, object]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start(name, port)
    try:
        wait_ready(port)
        wrk(port, 50, 1)  # warm-up
        many, one = wrk(port, 50, seconds), wrk(port, 1, seconds)
        return {"c50": many, "c1": one, "rss": peak_rss_mib(proc.pid), "slowloris": slowloris(port)}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _median(runs: list[dict[str, Any]], key: str, field: str) -> float:
    return statistics.median(r[key][field] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    results: dict[str, list[dict[str, object]]] = {name: [] for name in CANDIDATES}
    for rep in range(args.repeat):
        order = CANDIDATES if rep % 2 == 0 else CANDIDATES[::-1]  # interleaved
        for name in order:
            results[name].append(measure(name, args.seconds))
    print(
        "| candidate | req/s c50 | p99 ms c50 | req/s c1 | p99 ms c1 | peak RSS MiB | errors | slowloris (60 clients) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        med = partial(_median, runs)
        errors = sum(r["c50"]["errors"] + r["c1"]["errors"] for r in runs)
        rss = statistics.median(r["rss"] for r in runs)
        print(
            f"| {name} | {med('c50', 'rps'):,.0f} | {med('c50', 'p99'):.1f} | "
            f"{med('c1', 'rps'):,.0f} | {med('c1', 'p99'):.2f} | {rss:.1f} | {errors} | "
            f"{runs[-1]['slowloris']} |"
        )


if __name__ == "__main__":
    main()
