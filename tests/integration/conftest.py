"""Helpers to run `nameko run` processes against the real RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.throwaway_broker import ThrowawayRabbit

APPS = Path(__file__).parent / "apps"
SRC = Path(__file__).resolve().parents[2] / "src"
READY_TIMEOUT = 30


class NamekoProcess:
    """A `nameko run` subprocess; its output goes to a log file."""

    def __init__(self, cwd: Path, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
        self._log = open(log_path, "wb")  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", *args],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def wait_until_serving(
    config: dict, service: str, method: str = "ping", timeout: float = READY_TIMEOUT
):
    """Call ``service.method`` until its queue exists (UnknownService before)."""
    from nameko.testing.utils import assert_stops_raising

    with ClusterRpcProxy(config, timeout=timeout) as proxy:
        return assert_stops_raising(
            lambda: getattr(proxy[service], method)(), UnknownService, timeout=timeout, interval=0.1
        )


def start_nameko(cwd: Path, services: list[str], files=(), config: dict | None = None):
    """`nameko run services` in ``cwd``, with copies of ``files`` from apps/
    and ``config`` (which must name the broker) as its config.yaml."""
    cwd.mkdir(parents=True, exist_ok=True)
    for name in files:
        (cwd / name).write_text((APPS / name).read_text())
    (cwd / "test-config.yaml").write_text(yaml.safe_dump(config or {}))
    return NamekoProcess(cwd, ["--config", "test-config.yaml", *services], cwd / "nameko.log")


@pytest.fixture
def nameko_run(tmp_path, rabbit_uri):
    """Start `nameko run` in a folder holding ``files`` and a config.yaml
    (on the test's vhost of the shared broker unless ``config`` names another)."""
    started: list[NamekoProcess] = []

    def start(
        services: list[str], *, files=(), config: dict | None = None, folder: Path | None = None
    ):
        cwd = folder or tmp_path / f"run{len(started)}"
        full = {"AMQP_URI": rabbit_uri, **(config or {})}
        started.append(start_nameko(cwd, services, files, full))
        return started[-1]

    yield start
    for proc in started:
        proc.close()


@pytest.fixture(scope="module")
def throwaway_rabbit():
    """A RabbitMQ node of this module's own, which its tests may restart."""
    node = ThrowawayRabbit()
    try:
        node.start()
        yield node
    finally:
        node.close()


@pytest.fixture
def rabbit_config_uri(rabbit_uri):
    return {"AMQP_URI": rabbit_uri}
