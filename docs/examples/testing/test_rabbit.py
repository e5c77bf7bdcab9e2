"""On a real RabbitMQ: `rabbit_config` gives each test a vhost of its own,
deleted afterwards (through the management API, or rabbitmqctl)."""

import pytest
from service import GreetingService

from nameko.standalone.rpc import ClusterRpcClient, ClusterRpcProxy


def test_rabbit_config_2x_style(container_factory, rabbit_config):
    container = container_factory(GreetingService, rabbit_config)
    container.start()
    with ClusterRpcProxy(rabbit_config) as rpc:
        assert rpc.greeting.greet("Ada") == "Hello, Ada!"


@pytest.mark.usefixtures("rabbit_config")
def test_rabbit_config_3x_style(container_factory):
    container = container_factory(GreetingService)
    container.start()
    with ClusterRpcClient() as rpc:
        assert rpc.greeting.greet("Ada", language="fr") == "Bonjour, Ada!"
