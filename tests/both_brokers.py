"""Fixtures for tiers whose every test runs on both brokers (tests/aio,
tests/reliability): import them into the tier's conftest."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("rabbit", id="rabbit", marks=pytest.mark.rabbit),
    ]
)
def config(request: pytest.FixtureRequest) -> dict:
    """A broker config of its own: in memory, or a RabbitMQ vhost of its own;
    HTTP on a free loopback port either way (memory_config has one already)."""
    if request.param == "rabbit":
        web = request.getfixturevalue("web_config")
        return dict(request.getfixturevalue("rabbit_config"), **web)
    return dict(request.getfixturevalue("memory_config"))


@pytest.fixture
def start(config, container_factory):
    """start(ServiceCls, **config_overrides) -> a started container."""

    def start(service_cls, **overrides):
        container = container_factory(service_cls, {**config, **overrides})
        container.start()
        return container

    return start
