"""Fixtures for the reliability tier: each test runs on both brokers."""

from __future__ import annotations

import pytest

from tests.both_brokers import config, start

__all__ = ["config", "dead_letters", "start"]


@pytest.fixture
def dead_letters(config):
    """dead_letters(queue, count) -> the first ``count`` messages of a
    dead-letter queue (consumed and acked), waited for."""
    from nameko._broker import connect
    from nameko._broker.base import Queue
    from tests.core.helpers import Recorder

    opened = []

    def take(queue: str, count: int = 1) -> list:
        broker = connect(config["AMQP_URI"])
        opened.append(broker)
        seen = Recorder()

        def on_message(delivery):
            seen.add(delivery)
            delivery.ack()

        broker.declare([Queue(queue)])  # as shimeji declares it: it may not be there yet
        broker.consume(queue, on_message)
        return seen.wait_for(count)

    yield take
    for broker in opened:
        broker.close()
