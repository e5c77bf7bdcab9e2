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


def pytest_collection_modifyitems(items):
    """Everything under tests/integration needs RabbitMQ: mark it so the fast
    tier can deselect it with ``-m "not rabbit"``."""
    for item in items:
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.rabbit)


@pytest.fixture(autouse=True)
def _isolated_global_config():
    """Whatever a test (or a CLI command it runs) puts in nameko 3's global
    config is gone after it."""
    from nameko import config

    with config.patch({}):
        yield
