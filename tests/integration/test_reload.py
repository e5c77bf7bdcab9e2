"""`nameko run --reload` on the real RabbitMQ: editing the service while calls
are in flight restarts it with the new code and loses no call; a file that
does not compile leaves the running code in place."""

from __future__ import annotations

import os
import threading

from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import wait_until_serving
from tests.waiting import wait_until

TIMEOUT = 30
VERSION = """
import time

from nameko.rpc import rpc


class Svc:
    name = "svc"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def value(self):
        return {value}

    @rpc
    def slow(self):
        time.sleep(0.5)  # in flight when the file changes
        return "slow done"
"""


def test_an_edit_restarts_the_service_without_losing_calls(
    nameko_run, tmp_path, rabbit_uri, monkeypatch
):
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # as on a user's machine
    folder = tmp_path / "project"
    folder.mkdir()
    source = folder / "svc.py"
    source.write_text(VERSION.format(value=1))
    second = source.stat().st_mtime_ns // 10**9 * 10**9
    os.utime(source, ns=(second, second + 100))
    proc = nameko_run(["--reload", "svc"], folder=folder)
    broker = {"AMQP_URI": rabbit_uri}
    results, errors, seen_new = [], [], threading.Event()

    def call_in_a_loop():
        with ClusterRpcProxy(broker, timeout=TIMEOUT) as rpc:
            while not seen_new.is_set():
                try:
                    results.append(rpc.svc.value())
                except Exception as exc:  # any failure is a lost call
                    errors.append(exc)
                    return
                if results[-1] == 2:
                    seen_new.set()

    try:
        wait_until_serving(broker, "svc")
        with ClusterRpcProxy(broker, timeout=TIMEOUT) as rpc:
            in_flight = rpc.svc.slow.call_async()
            caller = threading.Thread(target=call_in_a_loop)
            caller.start()
            source.write_text(VERSION.format(value=2))
            # same size and the same mtime second as the bytecode cached at the
            # start: Python would trust that .pyc and run the old code
            os.utime(source, ns=(second, second + 200))
            assert seen_new.wait(TIMEOUT), proc.output()
            caller.join(TIMEOUT)
            assert in_flight.result() == "slow done"
            assert errors == []
            assert set(results) == {1, 2} and results == sorted(results)

            source.write_text(VERSION.format(value="3 +"))  # does not compile
            wait_until(lambda: "not reloading" in proc.output(), timeout=TIMEOUT)
            assert rpc.svc.value() == 2
    finally:
        proc.close()
    log = proc.output()
    assert log.count("restarting:") == 1 and "svc.py:" in log
