"""nameko 3 style: one global config, patched by fixtures and `config.patch`."""

import pytest
from service import FrontService, GreetingService

from nameko import config
from nameko.standalone.rpc import ClusterRpcClient
from nameko.testing.services import entrypoint_hook


@pytest.mark.usefixtures("memory_config")
def test_container_on_the_global_config(container_factory):
    container = container_factory(GreetingService)
    container.start()
    with ClusterRpcClient() as rpc:
        assert rpc.greeting.greet("Ada") == "Hello, Ada!"


@pytest.mark.usefixtures("memory_config")
def test_runner_factory(runner_factory):
    runner = runner_factory(GreetingService, FrontService)
    runner.start()
    with ClusterRpcClient() as rpc:
        assert rpc.front.welcome("Ada") == "HELLO, ADA!"


@pytest.mark.usefixtures("memory_config")
@config.patch({"MOTTO": "be brave"})
def test_config_patch_as_a_decorator(container_factory):
    container = container_factory(GreetingService)
    container.start()
    with entrypoint_hook(container, "motto") as motto:
        assert motto() == "be brave"


@pytest.mark.usefixtures("memory_config")
def test_config_patch_for_one_container(container_factory):
    container = container_factory(GreetingService, {"MOTTO": "be quick"})
    container.start()
    with entrypoint_hook(container, "motto") as motto:
        assert motto() == "be quick"
    with config.patch({"MOTTO": "be still"}):
        with entrypoint_hook(container, "motto") as motto:
            assert motto() == "be still"
