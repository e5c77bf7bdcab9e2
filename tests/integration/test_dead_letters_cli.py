"""``nameko dead-letters list | show | republish`` against the real RabbitMQ:
dead letters made by a service with a retry policy are
listed, shown without being taken, and sent back to a fixed service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nameko.exceptions import RemoteError
from nameko.reliability import RetryPolicy
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbit

SRC = Path(__file__).resolve().parents[2] / "src"


def nameko(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "nameko", "dead-letters", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


class Billing:
    name = "billing"
    broken = True
    charged: list = []

    @rpc(retry=RetryPolicy(on=ConnectionError, attempts=1))
    def charge(self, order):
        if Billing.broken:
            raise ConnectionError(f"payment gateway down for {order}")
        Billing.charged.append(order)


def test_list_show_and_republish(rabbit_config, container_factory):
    uri = rabbit_config["AMQP_URI"]
    Billing.broken, Billing.charged = True, []
    container_factory(Billing, rabbit_config).start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        for order in ("o-1", "o-2", "o-3"):
            with pytest.raises(RemoteError):
                cluster.billing.charge(order)

    listed = nameko("list", "--broker", uri)
    assert listed.returncode == 0, listed.stderr
    assert "dlq-billing.charge\t3" in listed.stdout

    shown = nameko("show", "billing.charge", "-n", "2", "--broker", uri)
    assert shown.returncode == 0, shown.stderr
    assert "dlq-billing.charge: 3 message(s)" in shown.stdout
    assert shown.stdout.count("reason:   retries-exhausted") == 2
    assert "error:    ConnectionError: payment gateway down for o-1" in shown.stdout
    assert "from:     nameko-rpc / billing.charge" in shown.stdout
    assert '"args": ["o-2"]' in shown.stdout

    Billing.broken = False  # fixed: send them back
    sent = nameko("republish", "dlq-billing.charge", "--broker", uri)
    assert sent.returncode == 0, sent.stderr
    assert "3 message(s) republished from dlq-billing.charge" in sent.stdout
    wait_until(lambda: len(Billing.charged) == 3, timeout=10)
    assert sorted(Billing.charged) == ["o-1", "o-2", "o-3"]
    assert "dlq-billing.charge\t0" in nameko("list", "--broker", uri).stdout


def test_show_needs_a_queue_and_list_says_when_there_is_none(rabbit_config):
    uri = rabbit_config["AMQP_URI"]
    missing = nameko("show", "--broker", uri)
    assert missing.returncode == 2 and "needs a queue" in missing.stderr
    empty = nameko("list", "--broker", uri)
    assert empty.returncode == 0 and "no dead-letter queues" in empty.stdout
