"""Every presence test runs on both brokers."""

import pytest

from nameko.presence import Announcer, Roster
from tests import both_brokers

config = both_brokers.config
start = both_brokers.start


@pytest.fixture
def announced(config, container_factory):
    """announced(ServiceCls, **config) -> (container, announcer), both started."""
    announcers = []

    def announced(service_cls, interval=None, **overrides):
        container = container_factory(service_cls, {**config, **overrides})
        announcer = Announcer(container.config, interval=interval)
        announcer.attach(container)
        announcers.append(announcer)
        container.start()
        announcer.start()
        return container, announcer

    yield announced
    for announcer in announcers:
        announcer.close()


@pytest.fixture
def roster(config):
    with Roster(config) as roster:
        yield roster
