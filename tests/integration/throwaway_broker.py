"""A private RabbitMQ node, for tests that stop and restart the broker.

The shared broker on 5672 must never be restarted (other tests use it), so
these tests start a node of their own: its own node name, AMQP and
distribution ports, data, logs and config in a temporary folder, no plugins.
A restart is the real thing: the node stops (SIGTERM, RabbitMQ's graceful
shutdown, as systemd or docker would stop it) and a new node starts on the
same port with the same data, so durable queues and persistent messages
come back and everything else is gone.

When run as root, ``rabbitmq-server`` and ``rabbitmqctl`` (Debian's wrapper)
switch to the ``rabbitmq`` user, so the folder is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from nameko.testing.utils import find_free_port
from tests.waiting import wait_until

HOST = "127.0.0.1"
START_TIMEOUT = 60  # a loaded two-core machine starts a node in ~4 s
STOP_TIMEOUT = 30
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1


class BrokerFailed(AssertionError):
    """The throwaway node did not start or stop."""


class ThrowawayRabbit:
    """One RabbitMQ node in a temporary folder; `close` removes every trace."""

    def __init__(self, name: str | None = None, advanced: str = "") -> None:
        """``advanced``: the ``rabbit`` application's settings in Erlang
        terms, for what rabbitmq.conf can't say (``{channel_tick_interval,
        500}``), written to the node's advanced.config."""
        self.advanced = advanced
        self.node = f"{name or f'shimeji-test-{os.getpid()}'}@localhost"
        self.port = find_free_port(HOST)
        self.dist_port = find_free_port(HOST)
        self.base = Path(tempfile.mkdtemp(prefix="shimeji-rabbit-"))
        self._server: subprocess.Popen[bytes] | None = None
        self._write_files()

    def uri(self, vhost: str = "") -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}/{vhost}"

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start the node; return once it speaks AMQP. Returns the seconds it took."""
        began = time.monotonic()
        self.launch()
        self.wait_ready(timeout)
        return time.monotonic() - began

    def launch(self) -> None:
        """Start the node without waiting for it (see `wait_ready`)."""
        log = open(self.base / "server.out", "ab")  # noqa: SIM115 (the child keeps it)
        with log:
            self._server = subprocess.Popen(
                ["rabbitmq-server"], env=self._env(), stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_until(self._ready, timeout, 0.1, what=f"RabbitMQ node {self.node} accepting AMQP")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful shutdown (SIGTERM to the Erlang VM); SIGKILL if it lingers."""
        server, self._server = self._server, None
        if server is None:
            return
        pid = self._vm_pid()
        try:
            if pid is None:  # it never got as far as writing it
                raise subprocess.TimeoutExpired("rabbitmq-server", 0)
            _signal(pid, signal.SIGTERM)
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            for leftover in self._leftover_pids():
                _signal(leftover, signal.SIGKILL)
            server.kill()
            server.wait(10)
        (self.base / "rabbitmq.pid").unlink(missing_ok=True)

    def restart(self) -> float:
        """Stop, then start again on the same port and data. Returns the
        seconds during which the broker was unreachable (about)."""
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted((self.base / "log").glob("*.log")) + [self.base / "server.out"]
        text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
        return "\n".join(text.splitlines()[-lines:])

    # -- internals -----------------------------------------------------------

    def _write_files(self) -> None:
        # our own config: the system one would also listen on the shared 5672
        (self.base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = {HOST}:{self.port}\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "advanced.config").write_text(f"[{{rabbit, [{self.advanced}]}}].\n")
        if os.geteuid() == 0 and _has_user("rabbitmq"):
            for path in [self.base, *self.base.iterdir()]:
                shutil.chown(path, "rabbitmq", "rabbitmq")

    def _env(self) -> dict[str, str]:
        base = self.base
        return dict(
            os.environ,
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
        )

    def _ready(self) -> bool:
        if self._server is not None and self._server.poll() is not None:
            raise BrokerFailed(f"RabbitMQ node {self.node} exited:\n{self.log_tail()}")
        return _speaks_amqp(self.port)

    def _leftover_pids(self) -> list[int]:
        """Processes started for this node (they carry its name in their
        environment), except epmd: an epmd started by our node serves the
        shared broker's node too."""
        marker = f"RABBITMQ_NODENAME={self.node}\0".encode()
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if marker in (proc / "environ").read_bytes() and (
                    (proc / "comm").read_text().strip() != "epmd"
                ):
                    pids.append(int(proc.name))
            except OSError:  # gone, or not ours to read
                continue
        return [pid for pid in pids if pid != os.getpid()]

    def _vm_pid(self) -> int | None:
        try:
            return int((self.base / "rabbitmq.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def _speaks_amqp(port: int) -> bool:
    """True when the node answers the AMQP protocol header with Connection.Start."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(AMQP_HEADER)
            return sock.recv(1)[:1] == bytes([FRAME_METHOD])
    except OSError:
        return False


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
