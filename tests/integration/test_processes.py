"""`nameko run --processes N`: N supervised processes of the same
services on the real RabbitMQ. Both serve; a process that dies is restarted;
SIGTERM stops them all gracefully (calls in flight are answered, exit 0); and
processes whose supervisor was killed stop by themselves."""

from __future__ import annotations

import os
import re
import signal

import pytest
import yaml

from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import NamekoProcess, wait_until_serving
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit

TIMEOUT = 30
SERVICE = """\
import os
import time

from nameko.rpc import rpc


class Worker:
    name = "worker"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def pid(self, seconds=0.0, started_in=None):
        if started_in:  # tell the test this call is running
            open(os.path.join(started_in, str(time.monotonic_ns())), "w").close()
        time.sleep(seconds)  # a slow method, so that both processes get calls
        return os.getpid()
"""


@pytest.fixture
def supervised(tmp_path, rabbit_uri):
    (tmp_path / "worker.py").write_text(SERVICE)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"AMQP_URI": rabbit_uri}))
    proc = NamekoProcess(
        tmp_path, ["--config", "config.yaml", "--processes", "2", "worker"], tmp_path / "log"
    )
    config = {"AMQP_URI": rabbit_uri}
    wait_until_serving(config, "worker")
    wait_until(lambda: len(started_pids(proc)) == 2, timeout=TIMEOUT)
    yield proc, config, started_pids(proc)
    proc.close()
    for pid in started_pids(proc):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def started_pids(proc: NamekoProcess) -> list[int]:
    return [int(pid) for pid in re.findall(r"process \d started \(pid (\d+)\)", proc.output())]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def running_calls(proxy, count: int, seconds: float, folder) -> list:
    """``count`` calls of ``seconds`` each, once every one of them is running."""
    started = folder / "started"
    started.mkdir()
    replies = [proxy.worker.pid.call_async(seconds, str(started)) for _ in range(count)]
    wait_until(lambda: len(list(started.iterdir())) == count, timeout=TIMEOUT)
    return replies


def serving_pids(config: dict, calls: int = 40) -> set[int]:
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        replies = [proxy.worker.pid.call_async(0.05) for _ in range(calls)]
        return {reply.result() for reply in replies}


def test_both_processes_serve_and_a_dead_one_is_restarted(supervised):
    proc, config, children = supervised
    first = set(children)
    # the second process may attach its consumer a little after the first serves
    wait_until(lambda: serving_pids(config) == first, timeout=TIMEOUT, what="both serving")
    killed = min(first)
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: len(started_pids(proc)) == 3, timeout=TIMEOUT, what="a restart")
    assert re.search(
        r"process \d exited \(status -9\) after [\d.]+ s; restarting it", proc.output()
    )
    replacement = set(started_pids(proc)) - first
    wait_until(lambda: serving_pids(config) == (first - {killed}) | replacement, timeout=TIMEOUT)


def test_sigterm_answers_the_calls_in_flight_and_stops_every_process(supervised, tmp_path):
    proc, config, children = supervised
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        replies = running_calls(proxy, 16, 1.0, tmp_path)
        proc.signal(signal.SIGTERM)  # every call is running: each must be answered
        answered = [reply.result() for reply in replies]
    assert set(answered) == set(children)
    assert proc.wait(TIMEOUT) == 0
    assert not any(_alive(pid) for pid in children)
    assert "all 2 processes stopped" in proc.output()


def test_processes_whose_supervisor_was_killed_stop_by_themselves(supervised):
    proc, _, children = supervised
    proc.signal(signal.SIGKILL)
    proc.wait(TIMEOUT)
    wait_until(lambda: not any(_alive(pid) for pid in children), timeout=TIMEOUT)


HTTP_SERVICE = """\
import os

from nameko.web.handlers import http


class Page:
    name = "page"

    @http("GET", "/pid")
    def pid(self, request):
        return str(os.getpid())
"""


def test_http_services_in_several_processes_share_their_address(tmp_path, rabbit_uri):
    from urllib.request import urlopen

    from nameko.testing.utils import find_free_port

    port = find_free_port()
    (tmp_path / "page.py").write_text(HTTP_SERVICE)
    config = {"AMQP_URI": rabbit_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = NamekoProcess(
        tmp_path, ["-c", "config.yaml", "--processes", "2", "page"], tmp_path / "log"
    )
    try:
        wait_until(lambda: len(started_pids(proc)) == 2, timeout=TIMEOUT)
        children, seen = set(started_pids(proc)), set()

        def both_answered() -> bool:
            try:  # a new connection each time: the kernel picks a process per connection
                with urlopen(f"http://127.0.0.1:{port}/pid", timeout=5) as response:
                    seen.add(int(response.read()))
            except OSError:  # not listening yet
                pass
            return seen == children

        wait_until(both_answered, timeout=TIMEOUT, interval=0.01, what="both processes answering")
        proc.signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    finally:
        proc.close()


def test_a_second_sigterm_makes_every_process_exit_at_once(supervised, tmp_path):
    proc, config, children = supervised
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        running_calls(proxy, 4, 60, tmp_path)  # long calls hold up a graceful stop
        proc.signal(signal.SIGTERM)
        wait_until(lambda: "stopping 2 processes gracefully" in proc.output(), timeout=TIMEOUT)
        proc.signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 1
    wait_until(lambda: not any(_alive(pid) for pid in children), timeout=TIMEOUT)
    assert "received again: the processes kill their workers" in proc.output()
