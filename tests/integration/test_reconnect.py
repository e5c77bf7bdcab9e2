"""Lost connections: services and clients reconnect, calls end instead of
hanging. Lost consumers: a service whose queue is deleted declares it again.
(Broker restarts: test_broker_restart.py.)"""

from __future__ import annotations

import threading
import uuid

import pytest

from nameko._broker import connect
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import wait_until_serving
from tests.rabbit_admin import close_connection, connection_pids
from tests.waiting import wait_until

TIMEOUT = 30


def test_service_reconnects_after_its_connection_is_closed(
    nameko_run, rabbit_config_uri, rabbit_vhost
):
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    close_connection("nameko:fault_service", rabbit_vhost)
    # calls made while the service reconnects are queued and answered
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        assert rpc.fault_service.ping() == "pong"
        assert rpc.fault_service.slow(0, "after") == "after"
    assert connection_pids("nameko:fault_service", rabbit_vhost)
    assert proc.proc.poll() is None  # still running


def test_call_in_flight_when_the_service_connection_drops(
    nameko_run, rabbit_config_uri, rabbit_vhost, tmp_path
):
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    release = tmp_path / "release"
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        # the job runs until the connection has been closed (rabbitmqctl is
        # slow on a loaded machine), so it can't ack in time by luck
        reply = rpc.fault_service.hold.call_async(str(release), "dropped")
        wait_until(lambda: rpc.fault_service.calls("dropped") == 1)
        close_connection("nameko:fault_service", rabbit_vhost)
        release.touch()
        # The worker can't ack on a dead channel: the broker redelivers the
        # request, to this service again once it reconnected, which knows it
        # as the job it is running (or just ran): settled, not run again.
        assert reply.result() == "dropped"
        wait_until(lambda: "not run again" in proc.output())
        assert rpc.fault_service.calls("dropped") == 1
    adopted = [line for line in proc.output().splitlines() if "not run again" in line]
    assert len(adopted) == 1 and "'rpc-fault_service'" in adopted[0]
    assert "may run a second time" not in proc.output()


def test_client_reconnects_and_pending_call_completes(nameko_run, rabbit_config_uri, rabbit_vhost):
    nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        reply = rpc.fault_service.slow.call_async(1, "client")
        close_connection("nameko:standalone_rpc_proxy", rabbit_vhost)
        assert reply.result() == "client"  # the reply waited in our durable reply queue
        assert rpc.fault_service.ping() == "pong"  # and the client works again


def test_call_on_a_lost_connection_ends_within_its_timeout(
    nameko_run, rabbit_config_uri, rabbit_vhost
):
    """Nobody will ever answer (the service is gone): the caller gets a typed
    error when its timeout expires, whatever the connection did meanwhile."""
    from nameko.exceptions import RpcTimeout

    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=3) as rpc:
        proc.proc.kill()  # the service dies without a word; its request stays queued
        proc.wait()
        outcome = []

        def call():
            try:
                rpc.fault_service.ping()
            except RpcTimeout as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        close_connection("nameko:standalone_rpc_proxy", rabbit_vhost)
        caller.join(TIMEOUT)
        assert not caller.is_alive() and isinstance(outcome[0], RpcTimeout)


def test_a_service_declares_its_deleted_queues_again(
    nameko_run, rabbit_config_uri, rabbit_uri
) -> None:
    """RabbitMQ cancels the consumers of a deleted queue (basic.cancel); the
    service declares the queue and its binding again and goes on consuming."""
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    with connect(rabbit_uri) as admin:
        admin.delete_queue("rpc-fault_service")
        admin.delete_queue("evt-fault_source-poke--fault_service.on_poke")
    # UnknownService (the queue is missing) until the service has declared it again
    assert wait_until_serving(rabbit_config_uri, "fault_service", timeout=10) == "pong"
    dispatch = event_dispatcher(rabbit_config_uri)
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:

        def handled() -> bool:
            # events sent before the handler's queue is bound again are lost: repeat
            dispatch("fault_source", "poke", "again")
            return rpc.fault_service.calls("pooled:again") > 0

        wait_until(handled, 10, 0.2)
    assert proc.output().count("declaring it again") == 2


def test_a_pooled_dispatcher_connection_gives_up_after_its_vhost_is_deleted(caplog):
    """The standalone dispatcher's idle pooled connection reconnects a few
    times (as a first connection does), then closes: no retrying forever."""
    from nameko._messaging.pool import close_idle
    from nameko.testing._vhosts import AMQP_HOST, create_vhosts, delete_vhosts

    vhost = f"shimeji_pool_{uuid.uuid4().hex[:8]}"
    create_vhosts([vhost])
    uri = f"{AMQP_HOST}/{vhost}"
    try:
        dispatch = event_dispatcher({"AMQP_URI": uri})
        dispatch("pool_source", "evt", "payload")
        delete_vhosts([vhost])
        # reconnects: at once, then 3 attempts 2, 3 and 4 s apart
        wait_until(lambda: "giving up" in caplog.text, timeout=30)
        assert caplog.text.count("giving up") == 1
        assert "Retrying in 4 seconds" in caplog.text
        assert "Retrying in 5 seconds" not in caplog.text
        with pytest.raises(ConnectionError):  # a new dispatch finds no vhost: a clear error
            dispatch("pool_source", "evt", "payload")
    finally:
        close_idle(uri)
