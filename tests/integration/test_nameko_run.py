"""Real `nameko run` processes on RabbitMQ: project layout, faults, graceful stop."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import NamekoProcess, wait_until_serving
from tests.rabbit_admin import queue_counts
from tests.raw_rpc import raw_rpc_request
from tests.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 30


def test_seed_000_project_runs_with_nameko_run(tmp_path, rabbit_uri):
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "seed000", project)
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["AMQP_URI"] = rabbit_uri  # the only change: this test's own vhost
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    # the seed's own command line
    proc = NamekoProcess(
        project, ["--config", "config.yaml", "services:GreetingService"], project / "seed.log"
    )
    try:
        with pytest.raises(RemoteError):  # answered, so the service is up
            wait_until_serving({"AMQP_URI": rabbit_uri}, "greeting_service", "raise_exception")
        with ClusterRpcProxy({"AMQP_URI": rabbit_uri}) as rpc:
            assert rpc.greeting_service.hello("world") == "Hello, world!"
            assert (
                rpc.greeting_service.hello.call_async("world async").result()
                == "Hello, world async!"
            )
        proc.signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        output = proc.output()
        assert "starting services: greeting_service" in output
        assert "Worker greeting_service.hello starting" in output
        assert "guest:guest@" not in output  # the password is masked everywhere
    finally:
        proc.close()


def test_cpu_bound_worker_keeps_its_connection_and_is_not_redelivered(
    nameko_run, rabbit_config_uri
):
    proc = nameko_run(
        ["fault_service:FaultService"], files=["fault_service.py"], config={"HEARTBEAT": 1}
    )
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        # three heartbeat intervals of pure-Python CPU on a worker thread
        assert rpc.fault_service.spin(3.5) == 1
        assert rpc.fault_service.calls("spin") == 1  # executed once: never redelivered
    output = proc.output()
    assert "Connection lost" not in output and "connection lost" not in output


def test_a_blocked_event_loop_keeps_the_connection(nameko_run, rabbit_config_uri):
    """An ``async def`` method that blocks the container's loop for three
    heartbeat intervals: heartbeats live on the I/O thread, not the loop."""
    proc = nameko_run(
        ["fault_service:FaultService"], files=["fault_service.py"], config={"HEARTBEAT": 1}
    )
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        assert rpc.fault_service.block_loop(3.5) == 1
        assert rpc.fault_service.calls("block_loop") == 1  # executed once: never redelivered
        assert rpc.fault_service.ping() == "pong"
    output = proc.output()
    assert "Connection lost" not in output and "connection lost" not in output


@pytest.mark.parametrize(
    "body,content_type,expected",
    [
        (b"{not json", "application/json", "MalformedRequest"),
        (b"\xff\xfe\xfd", "application/json", "MalformedRequest"),
        (b"[1, 2]", "application/json", "MalformedRequest"),
        (b'"text"', "application/json", "MalformedRequest"),
        (b'{"args": {}, "kwargs": {}}', "application/json", "MalformedRequest"),
        (b'{"args": [], "kwargs": {}}', None, "MalformedRequest"),
        (b'{"args": []}', "application/json", "MalformedRequest"),
        (b"\x80\x04K\x01.", "application/x-python-serialize", "MalformedRequest"),
    ],
)
def test_bad_input_is_answered_and_the_service_stays_up(
    nameko_run, rabbit_config_uri, rabbit_vhost, body, content_type, expected
):
    nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    reply = raw_rpc_request(
        rabbit_config_uri["AMQP_URI"], "fault_service.ping", body, content_type=content_type
    )
    assert reply["result"] is None and reply["error"]
    assert reply["error"]["exc_type"] == expected
    assert "indices" not in reply["error"]["value"]  # no internals
    assert wait_until_serving(rabbit_config_uri, "fault_service") == "pong"
    assert sum(queue_counts(rabbit_vhost, "rpc-fault_service")) == 0  # nothing stuck


def test_request_without_reply_to_is_dropped_once_and_logged(
    nameko_run, rabbit_config_uri, rabbit_vhost
):
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    raw_rpc_request(
        rabbit_config_uri["AMQP_URI"],
        "fault_service.ping",
        b'{"args": [], "kwargs": {}}',
        reply_to=False,
    )
    assert wait_until_serving(rabbit_config_uri, "fault_service") == "pong"
    assert proc.output().count("without reply_to") == 1
    assert sum(queue_counts(rabbit_vhost, "rpc-fault_service")) == 0


def test_sigterm_finishes_in_flight_work_then_exits_0(nameko_run, rabbit_config_uri, rabbit_vhost):
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        reply = rpc.fault_service.slow.call_async(2, "graceful")
        wait_until(lambda: _unacked(rabbit_vhost) == 1)  # a worker has it
        proc.signal(signal.SIGTERM)
        assert reply.result() == "graceful"
    assert proc.wait(TIMEOUT) == 0
    # nothing left to be executed again by another instance
    assert sum(queue_counts(rabbit_vhost, "rpc-fault_service")) == 0


def test_second_signal_exits_at_once_and_requeues(nameko_run, rabbit_config_uri, rabbit_vhost):
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        rpc.fault_service.slow.call_async(60, "forced")
        wait_until(lambda: _unacked(rabbit_vhost) == 1)
        proc.signal(signal.SIGTERM)
        # signals sent together are merged into one: wait for the first to land
        wait_until(lambda: "SIGTERM received: stopping" in proc.output())
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 1
        assert "SIGTERM received again: killing services" in proc.output()
    # the unfinished request went back to the queue for another instance
    wait_until(lambda: queue_counts(rabbit_vhost, "rpc-fault_service")[0] == 1)


def test_a_stop_past_shutdown_timeout_kills_requeues_and_exits_1(
    nameko_run, rabbit_config_uri, rabbit_vhost
):
    proc = nameko_run(
        ["fault_service:FaultService"], files=["fault_service.py"], config={"SHUTDOWN_TIMEOUT": 1}
    )
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        rpc.fault_service.slow.call_async(60, "overrun")
        wait_until(lambda: _unacked(rabbit_vhost) == 1)
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 1  # supervisors can see the work was not finished
    assert "graceful stop took over 1s" in proc.output()
    wait_until(lambda: queue_counts(rabbit_vhost, "rpc-fault_service")[0] == 1)  # requeued


def _unacked(vhost):
    return queue_counts(vhost, "rpc-fault_service")[1]


def test_cli_errors_exit_non_zero(tmp_path):
    result = subprocess.run(
        [*_nameko(), "run", "no_such_module_xyz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Error: No module named 'no_such_module_xyz'" in result.stderr


def _nameko():
    import sys

    return [sys.executable, "-m", "nameko"]
