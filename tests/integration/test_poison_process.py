"""A request that kills its process every time it runs,
on real processes: ``nameko run --processes 2`` restarts a process after
each death, RabbitMQ redelivers the unacked request, and after
``DELIVERY_LIMIT`` deliveries the request is dead-lettered and its caller
told, instead of killing the service for ever (nameko 2.14: an endless
crash loop)."""

from __future__ import annotations

import json

import pytest
import yaml

from nameko._broker import connect
from nameko.exceptions import DeliveryLimitExceeded
from nameko.standalone.rpc import ClusterRpcProxy
from tests.core.helpers import Recorder
from tests.integration.conftest import NamekoProcess, wait_until_serving

pytestmark = pytest.mark.rabbit

LIMIT = 3
SERVICE = """\
import os
import time

from nameko.rpc import rpc


class Fragile:
    name = "fragile"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def crash(self, folder):
        open(os.path.join(folder, str(time.monotonic_ns())), "w").close()
        os._exit(3)  # dies holding the request: no reply, no ack
"""


def test_a_request_that_kills_its_process_is_dead_lettered_after_the_limit(tmp_path, rabbit_uri):
    (tmp_path / "fragile.py").write_text(SERVICE)
    config = {"AMQP_URI": rabbit_uri, "DELIVERY_LIMIT": LIMIT}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = NamekoProcess(
        tmp_path, ["--config", "config.yaml", "--processes", "2", "fragile"], tmp_path / "log"
    )
    try:
        wait_until_serving(config, "fragile")
        with ClusterRpcProxy(config, timeout=90) as cluster:
            with pytest.raises(DeliveryLimitExceeded):
                cluster.fragile.crash(str(runs))
            assert cluster.fragile.ping() == "pong"  # the service is alive and well
    finally:
        proc.close()
    assert len(list(runs.iterdir())) == LIMIT  # run LIMIT times, never again
    assert proc.output().count("exited (status 3)") == LIMIT

    dead = Recorder()
    with connect(rabbit_uri) as broker:
        broker.consume("dlq-fragile.crash", lambda d: (dead.add(d), d.ack()))
        [message] = dead.wait_for(1)
    assert json.loads(message.body) == {"args": [str(runs)], "kwargs": {}}
    assert message.properties.headers["x-nameko-dead-reason"] == "delivery-limit"
