from __future__ import annotations

import pytest

from nameko.testing._vhosts import AMQP_HOST


@pytest.fixture
def rabbit_vhost(vhost_pipeline):
    """A fresh RabbitMQ vhost for this test only, deleted afterwards."""
    name = vhost_pipeline.take()
    yield name
    vhost_pipeline.give_back(name)


@pytest.fixture
def rabbit_uri(rabbit_vhost) -> str:
    return f"{AMQP_HOST}/{rabbit_vhost}"
