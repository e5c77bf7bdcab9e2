"""Connection churn under load: the broker closes every connection of the
vhost every few seconds while eight threads call a `nameko run` service.

What callers may see is an outage (a `ConnectionError` such as
`ConnectionLost`) or a timeout, never an internal error; the service logs
no ERROR and no traceback, and a graceful stop afterwards is as quick as
one without churn (no answered request is left waiting for an ack).
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time

from nameko.exceptions import RpcTimeout
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing._vhosts import rabbitmqctl
from tests.integration.conftest import wait_until_serving

CHURN_SECONDS = float(os.environ.get("SHIMEJI_CHURN_SECONDS", "60"))
CHURN_INTERVAL = 4.0  # seconds between two closes of every connection
THREADS = 8
CALL_TIMEOUT = 10
LEVELLED_LOGGING = {
    "LOGGING": {
        "version": 1,
        "formatters": {"levelled": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "levelled"}},
        "root": {"level": "INFO", "handlers": ["out"]},
    }
}


def _caller(proxy_for, stop, outcomes, index):
    proxy = proxy_for(index)
    n = 0
    while not stop.is_set():
        n += 1
        try:
            if n % 2:
                proxy.fault_service.ping()
            else:
                proxy.fault_service.slow(0.005, f"t{index}")
            outcomes["ok"] += 1
        except (ConnectionError, RpcTimeout) as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # what the test is about: nothing else may escape
            outcomes[f"unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}"] += 1


def test_connection_churn_gives_callers_only_outages_and_the_service_stays_clean(
    nameko_run, rabbit_config_uri, rabbit_vhost
):
    proc = nameko_run(
        ["fault_service:FaultService"], files=["fault_service.py"], config=LEVELLED_LOGGING
    )
    wait_until_serving(rabbit_config_uri, "fault_service")
    shared = ClusterRpcProxy(rabbit_config_uri, timeout=CALL_TIMEOUT)
    own = [ClusterRpcProxy(rabbit_config_uri, timeout=CALL_TIMEOUT) for _ in range(THREADS // 2)]
    # half the threads share one client, the others have their own
    proxy_for = lambda i: (shared if i % 2 else own[i // 2]).start()  # noqa: E731
    stop, outcomes = threading.Event(), collections.Counter()
    threads = [
        threading.Thread(target=_caller, args=(proxy_for, stop, outcomes, i), daemon=True)
        for i in range(THREADS)
    ]
    try:
        for thread in threads:
            thread.start()
        closes = 0
        end = time.monotonic() + CHURN_SECONDS
        while not stop.wait(CHURN_INTERVAL) and time.monotonic() < end:
            rabbitmqctl("close_all_connections", "--vhost", rabbit_vhost, "churn test")
            closes += 1
        stop.set()
        for thread in threads:
            thread.join(CALL_TIMEOUT * 2)
        unexpected = {k: v for k, v in outcomes.items() if k.startswith("unexpected")}
        assert not unexpected, (unexpected, outcomes)
        assert closes >= CHURN_SECONDS / (2 * CHURN_INTERVAL)  # rabbitmqctl takes ~1 s
        assert outcomes["ok"] > 1000, outcomes
        # the service and a shared client are sound afterwards
        assert wait_until_serving(rabbit_config_uri, "fault_service") == "pong"
        assert shared.start().fault_service.ping() == "pong"
    finally:
        stop.set()
        for client in [shared, *own]:
            client.stop()
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    stop_seconds = time.monotonic() - started
    output = proc.output()
    assert "ERROR " not in output and "Traceback" not in output, output[-5000:]
    assert "not acked in time" not in output
    assert stop_seconds < 5, stop_seconds
