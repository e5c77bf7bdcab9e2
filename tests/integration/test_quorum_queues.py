"""``QUEUE_TYPE: quorum`` on the real RabbitMQ (one node; the cluster is in
test_cluster.py). The same checks as tests/core/test_queue_types.py."""

from __future__ import annotations

import pytest

from nameko._protocol.queues import QueueTypeMismatch
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder
from tests.core.test_queue_types import make_service, queue_type

TIMEOUT = 10


def test_quorum_queues_serve_rpc_and_events(container_factory, rabbit_config) -> None:
    recorder = Recorder()
    config = {**rabbit_config, "QUEUE_TYPE": "quorum"}
    container_factory(make_service("svc", recorder), config).start()
    with ClusterRpcProxy(config, timeout=TIMEOUT) as proxy:
        assert proxy.svc.echo("hi") == "hi"
    event_dispatcher(config)("src", "thing", "data")
    event_dispatcher(config)("src", "other", "data")
    got = recorder.wait_for(4)
    assert sorted(kind for kind, _ in got) == ["broad", "pooled", "single", "unreliable"]
    assert queue_type(config, "rpc-svc") == "quorum"
    assert queue_type(config, "evt-src-thing--svc.pooled") == "quorum"
    assert queue_type(config, "evt-src-thing") == "quorum"


def test_a_classic_instance_of_the_service_keeps_quorum_ones_out(
    container_factory, rabbit_config
) -> None:
    """A running classic instance (nameko 2.14 declares exactly what shimeji
    declares for classic) owns ``rpc-svc``: a quorum instance refuses to
    start, with the typed error, and the classic one keeps serving."""
    container_factory(make_service("svc", Recorder()), rabbit_config).start()
    quorum = container_factory(
        make_service("svc", Recorder()), {**rabbit_config, "QUEUE_TYPE": {"svc": "quorum"}}
    )
    with pytest.raises(QueueTypeMismatch) as info:
        quorum.start()
    assert "'rpc-svc' exists as a classic queue, but QUEUE_TYPE asks for quorum" in str(info.value)
    with ClusterRpcProxy(rabbit_config, timeout=TIMEOUT) as proxy:
        assert proxy.svc.echo("still") == "still"
