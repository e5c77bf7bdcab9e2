"""Connection churn under load: the broker closes every connection of the
vhost again and again while eight threads call a `nameko run` service.

Each round closes every connection (rabbitmqctl close_all_connections), then
waits until every thread has made calls again that started after the close
(the service and both kinds of client have recovered), then lets the load run
for a short interval before the next close. Twelve rounds by default;
SHIMEJI_CHURN_SECONDS=600 keeps closing for that long (a soak), and
SHIMEJI_CHURN_CLOSES sets the number of rounds.

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

CLOSES = int(os.environ.get("SHIMEJI_CHURN_CLOSES", "12"))  # at least this many rounds
CHURN_SECONDS = float(os.environ.get("SHIMEJI_CHURN_SECONDS", "0"))  # and for at least this long
CHURN_INTERVAL = 0.5  # seconds of load between a recovery and the next close
RECOVERED_CALLS = 2  # per thread, started after the close and answered
THREADS = 8
CALL_TIMEOUT = 10
RECOVERY_TIMEOUT = 3 * CALL_TIMEOUT  # a thread may sit out a whole call timeout, or two
LEVELLED_LOGGING = {
    "LOGGING": {
        "version": 1,
        "formatters": {"levelled": {"format": "%(levelname)s %(name)s: %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "levelled"}},
        "root": {"level": "INFO", "handlers": ["out"]},
    }
}


class Churn:
    """The callers' outcomes, and how many calls of each thread that started after
    the latest close have been answered."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.closes = 0
        self.recovered = [0] * THREADS  # answered calls started since the latest close

    def record(self, index: int, started_in: int, outcome: str) -> None:
        with self.changed:
            self.outcomes[outcome] += 1
            if outcome == "ok" and started_in == self.closes:
                self.recovered[index] += 1
                self.changed.notify_all()

    def closed(self) -> None:
        with self.changed:
            self.closes += 1
            self.recovered = [0] * THREADS

    def wait_recovered(self) -> bool:
        with self.changed:
            return self.changed.wait_for(
                lambda: min(self.recovered) >= RECOVERED_CALLS, RECOVERY_TIMEOUT
            )


def _caller(proxy_for, churn, index):
    proxy = proxy_for(index)
    n = 0
    while not churn.stop.is_set():
        n += 1
        started_in = churn.closes
        try:
            if n % 2:
                proxy.fault_service.ping()
            else:
                proxy.fault_service.slow(0.005, f"t{index}")
            outcome = "ok"
        except (ConnectionError, RpcTimeout) as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # what the test is about: nothing else may escape
            outcome = f"unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}"
        churn.record(index, started_in, outcome)


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
    churn = Churn()
    threads = [
        threading.Thread(target=_caller, args=(proxy_for, churn, i), daemon=True)
        for i in range(THREADS)
    ]
    try:
        for thread in threads:
            thread.start()
        end = time.monotonic() + CHURN_SECONDS
        assert churn.wait_recovered(), churn.outcomes  # all threads calling before the first
        while churn.closes < CLOSES or time.monotonic() < end:
            churn.stop.wait(CHURN_INTERVAL)  # load on a recovered service
            rabbitmqctl("close_all_connections", "--vhost", rabbit_vhost, "churn test")
            churn.closed()
            assert churn.wait_recovered(), (churn.closes, churn.recovered, churn.outcomes)
        churn.stop.set()
        for thread in threads:
            thread.join(CALL_TIMEOUT * 2)
        outcomes = churn.outcomes
        unexpected = {k: v for k, v in outcomes.items() if k.startswith("unexpected")}
        assert not unexpected, (unexpected, outcomes)
        assert churn.closes >= CLOSES
        assert outcomes["ok"] > 100 * churn.closes, outcomes
        # the service and a shared client are sound afterwards
        assert wait_until_serving(rabbit_config_uri, "fault_service") == "pong"
        assert shared.start().fault_service.ping() == "pong"
    finally:
        churn.stop.set()
        for client in [shared, *own]:
            client.stop()
    print(f"churn: {churn.closes} closes; outcomes {dict(churn.outcomes)}")
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    stop_seconds = time.monotonic() - started
    output = proc.output()
    assert "ERROR " not in output and "Traceback" not in output, output[-5000:]
    assert "not acked in time" not in output
    # the service saw every close (its reconnect warning quotes the broker's reason)
    assert output.count("churn test") >= churn.closes, output[-5000:]
    assert stop_seconds < 5, stop_seconds
