"""``QUEUE_TYPE: quorum`` on the real RabbitMQ (one node; the cluster is in
test_cluster.py). The same checks as tests/core/test_queue_types.py."""

from __future__ import annotations

import re

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
    # whichever of its queues the container declared first (they start together)
    expected = r"queue '(rpc-svc|evt-src-thing\S*)' exists as a classic queue, but QUEUE_TYPE asks"
    assert re.search(expected, str(info.value)), info.value
    with ClusterRpcProxy(rabbit_config, timeout=TIMEOUT) as proxy:
        assert proxy.svc.echo("still") == "still"


def test_nameko_run_says_so_in_one_line_and_exits(container_factory, rabbit_uri, nameko_run):
    classic = {"AMQP_URI": rabbit_uri}  # the vhost `nameko_run` uses
    container_factory(make_service("cluster_service", Recorder()), classic).start()
    proc = nameko_run(
        ["cluster_service:ClusterService"],
        files=["cluster_service.py"],
        config={"QUEUE_TYPE": "quorum", "RECORD_FILE": "record.txt"},
    )
    assert proc.wait(TIMEOUT * 3) != 0
    output = proc.output()
    assert "Error: queue 'rpc-cluster_service' exists as a classic queue" in output, output
    assert "Traceback" not in output, output
