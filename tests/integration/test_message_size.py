"""Messages over the maximum size: refused with a typed error, run once, and
nothing else on the connection is hurt (RabbitMQ's max_message_size is
128 MiB by default; a body over it closes the publishing channel)."""

from __future__ import annotations

import pytest

from nameko.exceptions import MessageTooLarge
from nameko.standalone.rpc import ClusterRpcProxy
from tests.integration.conftest import wait_until_serving
from tests.rabbit_admin import queue_counts
from tests.waiting import wait_until

MiB = 1024 * 1024
OVER_RABBITS_LIMIT = 130 * MiB  # RabbitMQ's default max_message_size is 128 MiB
TIMEOUT = 60


def _settled(vhost):
    return queue_counts(vhost, "rpc-fault_service") == (0, 0)


@pytest.mark.parametrize(
    "service_limit",
    [
        None,  # ours (128 MiB by default) refuses the reply before sending it
        512 * MiB,  # ours lets it through: the broker refuses it
    ],
)
def test_a_result_too_large_to_send_is_an_error_reply_and_runs_once(
    nameko_run, rabbit_config_uri, rabbit_vhost, service_limit
):
    config = {"MAX_MESSAGE_SIZE": service_limit} if service_limit else {}
    proc = nameko_run(["fault_service:FaultService"], files=["fault_service.py"], config=config)
    wait_until_serving(rabbit_config_uri, "fault_service")
    with ClusterRpcProxy(rabbit_config_uri, timeout=TIMEOUT) as rpc:
        big = rpc.fault_service.make.call_async(OVER_RABBITS_LIMIT)
        # requests in flight beside it on the same connection are unaffected
        pings = [rpc.fault_service.ping.call_async() for _ in range(20)]
        with pytest.raises(MessageTooLarge, match="too large to send"):
            big.result()
        assert [ping.result() for ping in pings] == ["pong"] * 20
        wait_until(lambda: _settled(rabbit_vhost), what="the request acked")
        assert rpc.fault_service.calls("make") == 1  # executed exactly once
        assert rpc.fault_service.make(10) == "x" * 10  # and the service goes on
    output = proc.output()
    # logged once, by us or when the broker refused it
    assert output.count("can't be sent") + output.count("refused the reply") == 1, output
    assert "requeued" not in output


def test_a_request_too_large_fails_at_the_caller(nameko_run, rabbit_config_uri, rabbit_vhost):
    nameko_run(["fault_service:FaultService"], files=["fault_service.py"])
    wait_until_serving(rabbit_config_uri, "fault_service")
    config = {**rabbit_config_uri, "MAX_MESSAGE_SIZE": MiB}
    with ClusterRpcProxy(config, timeout=TIMEOUT) as rpc:
        with pytest.raises(MessageTooLarge, match="larger than the maximum message size"):
            rpc.fault_service.slow(0, "x" * (2 * MiB))
        assert rpc.fault_service.calls("x" * 10) == 0  # the client goes on
    assert _settled(rabbit_vhost)
