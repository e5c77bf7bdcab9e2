"""Fixtures shared by the core tier: every test gets its own in-memory broker."""

from __future__ import annotations

import pytest


@pytest.fixture
def config(memory_config):
    return memory_config


@pytest.fixture
def start(config, container_factory):
    """start(ServiceCls, **config_overrides) -> a started container."""

    def start(service_cls, **overrides):
        container = container_factory(service_cls, {**config, **overrides})
        container.start()
        return container

    return start
