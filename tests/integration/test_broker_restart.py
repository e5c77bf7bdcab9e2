"""A broker restart: services and clients reconnect, no call hangs.

The broker is a node of this module's own (`throwaway_rabbit`), stopped and
started again on the same port and data: durable queues and persistent
messages survive, connections and exclusive queues do not. A restart costs
about 6 s, so one restart serves every test here: `restart` sets the stage
before it, makes it, and records what happened; each test checks one aspect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from nameko._broker.base import ConnectionLost
from nameko._messaging.pool import close_idle
from nameko.exceptions import RpcTimeout
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.utils import assert_stops_raising
from tests.integration.conftest import NamekoProcess, start_nameko, wait_until_serving
from tests.integration.throwaway_broker import ThrowawayRabbit
from tests.waiting import wait_until

TIMEOUT = 30  # reconnecting waits out the back-off (2 s, 3 s, 4 s...) after the restart
SHORT = 3  # a call timeout that expires while the broker is down
PUBLISH_RETRIES = 3.5  # seconds: nameko._messaging.publish.RETRY_DELAYS


class Outcome:
    """The result or exception of a call run in a thread, and how long it took."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        began = time.monotonic()
        try:
            self.value = call()
        except Exception as exc:
            self.error = exc
        self.seconds = time.monotonic() - began

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float = TIMEOUT) -> Outcome:
        self._thread.join(timeout)
        assert self.done, f"still waiting after {timeout}s"
        return self


@dataclass
class Restart:
    config: dict[str, Any]
    service: NamekoProcess
    old_client: Any  # a ClusterProxy connected before the restart
    in_flight: Any  # a PendingReply whose request was being processed
    expiring: Outcome  # a call made before, whose timeout ran out meanwhile
    while_down: Outcome  # a call made while the broker was down


@pytest.fixture(scope="module")
def restart(throwaway_rabbit: ThrowawayRabbit, tmp_path_factory) -> Iterator[Restart]:
    config = {"AMQP_URI": throwaway_rabbit.uri()}
    service = start_nameko(
        tmp_path_factory.mktemp("restart"), ["fault_service:FaultService"], ["fault_service.py"],
        config,
    )  # fmt: skip
    clients = [ClusterRpcProxy(config, timeout=TIMEOUT) for _ in range(3)]
    expiring_client = ClusterRpcProxy(config, timeout=SHORT)
    try:
        wait_until_serving(config, "fault_service")
        old, fresh, down = (c.start() for c in clients)
        assert old.fault_service.ping() == "pong"
        expiring = Outcome(lambda: expiring_client.start().fault_service.slow(60, "expiring"))
        wait_until(lambda: old.fault_service.calls("expiring") == 1, TIMEOUT)
        # a client's first call to a service waits for the broker's confirm:
        # this request is safely queued before the broker goes
        in_flight = fresh.fault_service.slow.call_async(3, "in-flight")
        wait_until(lambda: old.fault_service.calls("in-flight") == 1, TIMEOUT)

        throwaway_rabbit.stop()
        assert not expiring.done, "the call timed out before the broker went down"
        # the broker stays down until this call has ended: it cannot succeed
        while_down = Outcome(down.fault_service.ping).wait()
        throwaway_rabbit.start()
        yield Restart(config, service, old, in_flight, expiring, while_down)
    finally:
        for client in [*clients, expiring_client]:
            client.stop()
        service.close()
        close_idle(config["AMQP_URI"])  # the standalone dispatcher's pooled connection


def test_the_service_reconnects_with_back_off_and_serves_new_clients(restart: Restart) -> None:
    with ClusterRpcProxy(restart.config, timeout=TIMEOUT) as rpc:
        assert rpc.fault_service.ping() == "pong"
    log = restart.service.output()
    assert "lost" in log and "Retrying in" in log, log  # it waited between attempts
    # a reply that could not be sent is a warning, not a worker error
    assert "error handling result" not in log, log
    assert restart.service.proc.poll() is None


def test_a_client_connected_before_the_restart_works_again(restart: Restart) -> None:
    """Calls raise ConnectionLost until the client has reconnected (it backs
    off too); then its reply queue and consumer are back."""
    result = assert_stops_raising(
        restart.old_client.fault_service.ping, ConnectionLost, timeout=TIMEOUT, interval=0.2
    )
    assert result == "pong"


def test_a_request_in_flight_is_answered_after_the_restart(restart: Restart) -> None:
    """The worker's reply could not be published while the broker was down,
    and the request was never acked: the persistent request comes back with
    the durable queue and runs again (at-least-once). Its reply reaches the
    client's reply queue, which is durable too."""
    assert restart.in_flight.result() == "in-flight"
    calls = restart.old_client.fault_service.calls
    wait_until(lambda: calls("in-flight") == 2, TIMEOUT)


def test_a_call_whose_timeout_expires_while_the_broker_is_down_times_out(
    restart: Restart,
) -> None:
    outcome = restart.expiring.wait()
    assert isinstance(outcome.error, RpcTimeout)
    assert outcome.seconds < SHORT + 2


def test_a_call_made_while_the_broker_is_down_fails_fast(restart: Restart) -> None:
    """The publish is retried for 3.5 s (0.5 + 1 + 2) while the client tries
    to reconnect; then the caller gets a typed error instead of waiting."""
    outcome = restart.while_down
    assert isinstance(outcome.error, ConnectionLost), outcome.value
    assert isinstance(outcome.error, ConnectionError)  # catchable without a private import
    assert outcome.seconds < PUBLISH_RETRIES + 3


def test_event_handlers_receive_events_after_the_restart(restart: Restart) -> None:
    """The service-pool handler's durable queue survived; the broadcast
    handler's exclusive queue died with the connection and is declared anew
    when the service has reconnected."""
    dispatch = event_dispatcher(restart.config)
    with ClusterRpcProxy(restart.config, timeout=TIMEOUT) as rpc:
        calls = rpc.fault_service.calls

        def both_handled() -> bool:
            # events sent before the broadcast queue is declared again are lost: repeat
            dispatch("fault_source", "poke", "after")
            return calls("pooled:after") > 0 and calls("broadcast:after") > 0

        wait_until(both_handled, TIMEOUT, 0.2)
