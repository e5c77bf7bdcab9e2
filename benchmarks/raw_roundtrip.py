"""Raw AMQP request/reply round trips: shimeji's transport against py-amqp.

One echo consumer sends every request back to the reply queue named in its
``reply_to``; the client publishes each request with publisher confirms and
waits for the reply. Both clients run in the same process, one after the
other, against the same RabbitMQ, on a fresh vhost this script creates with
rabbitmqctl and deletes afterwards.

    python benchmarks/raw_roundtrip.py [--quick] [--inflight 16]

Serial: one call at a time (latency-bound). Pipelined: ``--inflight``
calls in flight: shimeji from that many threads sharing one connection (how
it is used), py-amqp (not thread-safe) from one thread keeping a window of
unconfirmed publishes open with ``confirm_select`` and ack callbacks.

The plain floor (``plain py-amqp``): py-amqp with NO publisher confirms and no
framework, one connection on each side, and the echo side in its own process
(as a ``nameko run`` service is): the client publishes a request and drains its
connection until the reply arrives (serial), or keeps ``--inflight`` requests
in flight (pipelined). Its rows also give ``cpu-us/call``: the client's, the
echo process's and the broker's (the listener on the port, when ``ss`` shows its
pid) ``utime + stime`` (``/proc/<pid>/stat``) over the measured calls, divided
by the calls.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import select
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import amqp  # noqa: E402  (py-amqp 5.4.2, the baseline)

from nameko._broker.base import Delivery, Properties, Queue  # noqa: E402
from nameko._broker.rabbit import RabbitBroker  # noqa: E402
from nameko._concurrency import OneShot  # noqa: E402

REQUESTS = "bench-requests"
PLAIN_REQUESTS = "bench-plain-requests"
BODY = b'{"args": ["a benchmark payload of moderate size"], "kwargs": {"n": 12345}}'


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class Stats:
    def __init__(self, name: str, calls: int, seconds: float, latencies: list[float]) -> None:
        latencies = sorted(latencies)
        self.name, self.rate = name, calls / seconds
        self.p50 = statistics.median(latencies) * 1000
        self.p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000

    def row(self) -> str:
        return f"  {self.name:<34} {self.rate:>9.0f} {self.p50:>9.3f} {self.p99:>9.3f}"


# -- shimeji -----------------------------------------------------------------


class ShimejiClient:
    def __init__(self, uri: str) -> None:
        self.server = RabbitBroker(uri, connection_name="bench-echo")
        self.server.declare([Queue(REQUESTS, durable=False)])
        self.server.consume(REQUESTS, self._echo, prefetch=256)
        self.client = RabbitBroker(uri, connection_name="bench-client")
        self.reply_queue = f"bench-replies-{secrets.token_hex(4)}"
        self.waiters: dict[str, OneShot[bytes]] = {}
        topology = [Queue(self.reply_queue, durable=False, exclusive=True)]
        self.client.consume(self.reply_queue, self._on_reply, topology=topology, no_ack=True)
        self.counter = iter(range(10**9))

    def _echo(self, delivery: Delivery) -> None:
        props = Properties(correlation_id=delivery.properties.correlation_id)
        self.server.publish("", delivery.properties.reply_to, delivery.body, props, confirm=False)
        delivery.ack()

    def _on_reply(self, delivery: Delivery) -> None:
        waiter = self.waiters.pop(delivery.properties.correlation_id, None)
        if waiter is not None:
            waiter.send(delivery.body)

    def call(self) -> None:
        correlation_id = str(next(self.counter))
        waiter = self.waiters[correlation_id] = OneShot()
        props = Properties(correlation_id=correlation_id, reply_to=self.reply_queue)
        self.client.publish("", REQUESTS, BODY, props)
        assert waiter.get(10) == BODY

    def pipelined(self, calls: int, inflight: int) -> tuple[float, list[float]]:
        latencies: list[float] = []
        per_thread = calls // inflight

        def worker() -> None:
            mine = []
            for _ in range(per_thread):
                start = time.perf_counter()
                self.call()
                mine.append(time.perf_counter() - start)
            latencies.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(inflight)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, latencies

    def close(self) -> None:
        self.client.close()
        self.server.close()


# -- py-amqp -------------------------------------------------------------------


class PyAmqpClient:
    def __init__(self, host: str, vhost: str, *, confirm_each: bool = True) -> None:
        self.stop = threading.Event()
        self.echo_conn = amqp.Connection(host, userid="guest", password="guest", virtual_host=vhost)
        self.echo_conn.connect()
        self.echo_channel = self.echo_conn.channel()
        self.echo_channel.queue_declare(REQUESTS, durable=False, auto_delete=False)
        self.echo_channel.basic_qos(0, 256, False)
        self.echo_channel.basic_consume(REQUESTS, callback=self._echo)
        self.echo_thread = threading.Thread(target=self._serve, daemon=True)
        self.echo_thread.start()

        self.conn = amqp.Connection(
            host, userid="guest", password="guest", virtual_host=vhost, confirm_publish=confirm_each
        )
        self.conn.connect()
        self.channel = self.conn.channel()
        self.reply_queue = f"bench-replies-{secrets.token_hex(4)}"
        self.channel.queue_declare(self.reply_queue, durable=False, exclusive=True)
        self.channel.basic_consume(self.reply_queue, callback=self._on_reply, no_ack=True)
        self.replies: dict[str, bytes] = {}
        self.on_reply: Callable[[amqp.Message], None] | None = None
        self.counter = iter(range(10**9))

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                self.echo_conn.drain_events(timeout=0.2)
            except TimeoutError:
                pass

    def _echo(self, message: amqp.Message) -> None:
        reply = amqp.Message(message.body, correlation_id=message.properties["correlation_id"])
        self.echo_channel.basic_publish(
            reply, exchange="", routing_key=message.properties["reply_to"]
        )
        self.echo_channel.basic_ack(message.delivery_tag)

    def _on_reply(self, message: amqp.Message) -> None:
        if self.on_reply is not None:
            self.on_reply(message)
        else:
            self.replies[message.properties["correlation_id"]] = message.body

    def call(self) -> None:
        correlation_id = str(next(self.counter))
        message = amqp.Message(BODY, correlation_id=correlation_id, reply_to=self.reply_queue)
        self.channel.basic_publish(
            message, exchange="", routing_key=REQUESTS
        )  # waits for the confirm
        while correlation_id not in self.replies:
            self.conn.drain_events(timeout=10)
        assert self.replies.pop(correlation_id) == BODY

    def pipelined(self, calls: int, inflight: int) -> tuple[float, list[float]]:
        """A window of ``inflight`` calls: each done when confirmed and answered."""
        confirms = self.conn.channel()
        confirms.confirm_select()
        sent: dict[int, str] = {}  # delivery tag -> correlation id
        started_at: dict[str, float] = {}
        pending: dict[str, int] = {}  # correlation id -> outstanding parts (ack, reply)
        latencies: list[float] = []

        def part_done(correlation_id: str) -> None:
            pending[correlation_id] -= 1
            if not pending[correlation_id]:
                del pending[correlation_id]
                latencies.append(time.perf_counter() - started_at.pop(correlation_id))

        def on_ack(delivery_tag: int, multiple: bool) -> None:
            for tag in [t for t in sent if t <= delivery_tag] if multiple else [delivery_tag]:
                part_done(sent.pop(tag))

        confirms.events["basic_ack"].add(on_ack)
        self.on_reply = lambda message: part_done(message.properties["correlation_id"])
        tag = 0
        started = time.perf_counter()
        while len(latencies) < calls:
            while len(pending) < inflight and tag < calls:
                tag += 1
                correlation_id = f"p{tag}"
                pending[correlation_id], started_at[correlation_id], sent[tag] = (
                    2,
                    time.perf_counter(),
                    correlation_id,
                )
                message = amqp.Message(
                    BODY, correlation_id=correlation_id, reply_to=self.reply_queue
                )
                confirms.basic_publish(message, exchange="", routing_key=REQUESTS)
            self.conn.drain_events(timeout=10)
        return time.perf_counter() - started, latencies

    def close(self) -> None:
        self.stop.set()
        self.echo_thread.join()
        self.conn.close()
        self.echo_conn.close()


# -- plain py-amqp: no confirms, echo in its own process --------------------------


def proc_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def broker_pid(host: str) -> int | None:
    """The pid of the process listening on the broker's port (for its CPU), if readable."""
    port = host.rpartition(":")[2] or "5672"
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found[1]) if found else None


def serve_echo(host: str, vhost: str) -> None:
    """``--serve-echo``: echo every request to its reply_to until stdin closes."""
    conn = amqp.Connection(host, userid="guest", password="guest", virtual_host=vhost)
    conn.connect()
    channel = conn.channel()
    channel.queue_declare(PLAIN_REQUESTS, durable=False, auto_delete=False)
    channel.basic_qos(0, 256, False)

    def echo(message: amqp.Message) -> None:
        props = message.properties
        reply = amqp.Message(message.body, correlation_id=props["correlation_id"])
        channel.basic_publish(reply, exchange="", routing_key=props["reply_to"])
        channel.basic_ack(message.delivery_tag)

    channel.basic_consume(PLAIN_REQUESTS, callback=echo)
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:
        try:
            conn.drain_events(timeout=0.2)
        except TimeoutError:
            pass
    conn.close()


class PlainClient:
    def __init__(self, host: str, vhost: str) -> None:
        cmd = [sys.executable, __file__, "--serve-echo", "--host", host, "--vhost", vhost]
        self.echo = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.echo.stdout is not None
        if self.echo.stdout.readline().strip() != b"ready":
            raise RuntimeError("the plain echo process did not start")
        self.conn = amqp.Connection(host, userid="guest", password="guest", virtual_host=vhost)
        self.conn.connect()
        self.channel = self.conn.channel()
        self.reply_queue = f"bench-plain-replies-{secrets.token_hex(4)}"
        self.channel.queue_declare(self.reply_queue, durable=False, exclusive=True)
        self.channel.basic_consume(self.reply_queue, callback=self._on_reply, no_ack=True)
        self.replies: dict[str, bytes] = {}
        self.counter = iter(range(10**9))
        self.broker = broker_pid(host)
        self.ticks: dict[str, int] = {}

    def _on_reply(self, message: amqp.Message) -> None:
        self.replies[message.properties["correlation_id"]] = message.body

    def _publish(self, correlation_id: str) -> None:
        message = amqp.Message(BODY, correlation_id=correlation_id, reply_to=self.reply_queue)
        self.channel.basic_publish(message, exchange="", routing_key=PLAIN_REQUESTS)

    def call(self) -> None:
        correlation_id = str(next(self.counter))
        self._publish(correlation_id)
        while correlation_id not in self.replies:
            self.conn.drain_events(timeout=10)
        assert self.replies.pop(correlation_id) == BODY

    def pipelined(self, calls: int, inflight: int) -> tuple[float, list[float]]:
        started_at: dict[str, float] = {}
        latencies: list[float] = []
        sent = 0
        started = time.perf_counter()
        while len(latencies) < calls:
            while len(started_at) < inflight and sent < calls:
                sent += 1
                correlation_id = f"p{sent}"
                started_at[correlation_id] = time.perf_counter()
                self._publish(correlation_id)
            self.conn.drain_events(timeout=10)
            for correlation_id in list(self.replies):
                del self.replies[correlation_id]
                latencies.append(time.perf_counter() - started_at.pop(correlation_id))
        return time.perf_counter() - started, latencies

    def _read_ticks(self) -> dict[str, int]:
        pids = {"client": os.getpid(), "echo": self.echo.pid}
        if self.broker:
            pids["broker"] = self.broker  # all the broker's work, other users' too
        ticks = {}
        for name, pid in pids.items():
            try:
                ticks[name] = proc_ticks(pid)
            except OSError:
                continue
        return ticks

    def cpu_start(self) -> None:
        self.ticks = self._read_ticks()

    def cpu_suffix(self, calls: int) -> str:
        tick_us = 1e6 / os.sysconf("SC_CLK_TCK") / calls
        after = self._read_ticks()
        used = [
            f"{name} {(after[name] - before) * tick_us:.0f}"
            for name, before in self.ticks.items()
            if name in after
        ]
        return "  cpu-us/call: " + ", ".join(used)

    def close(self) -> None:
        self.conn.close()
        assert self.echo.stdin is not None
        self.echo.stdin.close()
        try:
            self.echo.wait(10)
        except subprocess.TimeoutExpired:
            self.echo.kill()
            self.echo.wait()


def plain_floor(host: str, vhost: str, calls: int, inflight: int) -> tuple[str, str]:
    """The serial and pipelined rows of the plain py-amqp floor (with CPU per call)."""
    name = f"plain py-amqp {amqp.__version__} (no confirms)"
    plain = PlainClient(host, vhost)
    try:
        for _ in range(min(100, calls)):  # warm up
            plain.call()
        plain.cpu_start()
        latencies = []
        started = time.perf_counter()
        for _ in range(calls):
            start = time.perf_counter()
            plain.call()
            latencies.append(time.perf_counter() - start)
        serial_row = Stats(name, calls, time.perf_counter() - started, latencies).row()
        serial_row += plain.cpu_suffix(calls)
        plain.pipelined(min(calls, 10 * inflight), inflight)  # warm up
        plain.cpu_start()
        pipe_row = Stats(name, calls, *plain.pipelined(calls, inflight)).row()
        pipe_row += plain.cpu_suffix(calls)
    finally:
        plain.close()
    return serial_row, pipe_row


# -- the run ---------------------------------------------------------------------


def serial(name: str, call: Callable[[], None], calls: int) -> Stats:
    for _ in range(min(100, calls)):  # warm up
        call()
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return Stats(name, calls, time.perf_counter() - started, latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few hundred calls instead of a few thousand"
    )
    parser.add_argument(
        "--inflight", type=int, default=16, help="calls in flight for the pipelined figure"
    )
    parser.add_argument("--host", default="127.0.0.1:5672")
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--vhost", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        serve_echo(args.host, args.vhost)
        return
    calls = 300 if args.quick else 3000
    vhost = f"shimeji_bench_{secrets.token_hex(4)}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        run(f"amqp://guest:guest@{args.host}/{vhost}", args.host, vhost, calls, args.inflight)
    finally:
        rabbitmqctl("delete_vhost", vhost)


def run(uri: str, host: str, vhost: str, calls: int, inflight: int) -> None:
    print(
        f"raw AMQP request/reply (with publisher confirms but the plain rows): {calls} calls, {len(BODY)}-byte body, Python {sys.version.split()[0]}"
    )
    ours = ShimejiClient(uri)
    try:
        ours_serial = serial("shimeji", ours.call, calls)
        ours.pipelined(min(calls, 10 * inflight), inflight)  # warm up the threads' path
        ours_pipe = Stats("shimeji", calls, *ours.pipelined(calls - calls % inflight, inflight))
    finally:
        ours.close()
    theirs = PyAmqpClient(host, vhost)
    try:
        theirs_serial = serial(f"py-amqp {amqp.__version__}", theirs.call, calls)
    finally:
        theirs.close()
    windowed = PyAmqpClient(host, vhost, confirm_each=False)
    try:
        theirs_pipe = Stats(
            f"py-amqp {amqp.__version__}", calls, *windowed.pipelined(calls, inflight)
        )
    finally:
        windowed.close()
    plain_serial, plain_pipe = plain_floor(host, vhost, calls, inflight)
    header = f"  {'':<34} {'calls/s':>9} {'p50 ms':>9} {'p99 ms':>9}"
    for title, a, b, plain in (
        ("serial (1 in flight)", ours_serial, theirs_serial, plain_serial),
        (f"pipelined ({inflight} in flight)", ours_pipe, theirs_pipe, plain_pipe),
    ):
        print(f"\n{title}\n{header}\n{a.row()}\n{b.row()}\n{plain}")
        print(f"  ratio shimeji/py-amqp: {a.rate / b.rate:.2f}x calls/s, {a.p50 / b.p50:.2f}x p50")


if __name__ == "__main__":
    main()
