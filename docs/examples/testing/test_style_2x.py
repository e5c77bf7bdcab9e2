"""nameko 2.x style: config dicts from fixtures, passed to every constructor.

`memory_config` runs the services on an in-memory broker private to the test;
use `rabbit_config` instead for a real RabbitMQ (see test_rabbit.py)."""

from service import FrontService, GreetingService

from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook, entrypoint_waiter, replace_dependencies
from nameko.testing.utils import get_container


def test_entrypoint_hook(container_factory, memory_config):
    container = container_factory(GreetingService, memory_config)
    container.start()
    with entrypoint_hook(container, "greet") as greet:
        assert greet("Ada", language="fr") == "Bonjour, Ada!"


def test_replace_dependencies(container_factory, memory_config):
    container = container_factory(GreetingService, memory_config)
    greetings = replace_dependencies(container, "greetings")
    greetings.__getitem__.return_value = "Ahoy"
    container.start()
    with entrypoint_hook(container, "greet") as greet:
        assert greet("Ada") == "Ahoy, Ada!"


def test_runner_factory_and_entrypoint_waiter(runner_factory, memory_config):
    runner = runner_factory(memory_config, GreetingService, FrontService)
    runner.start()
    greeting = get_container(runner, GreetingService)
    with entrypoint_waiter(greeting, "greet") as result:
        with ClusterRpcProxy(memory_config) as rpc:
            assert rpc.front.welcome("Ada") == "HELLO, ADA!"
    assert result.get() == "Hello, Ada!"  # the worker has finished, teardown included


def test_http_entrypoint(container_factory, memory_config, web_config, web_session):
    container = container_factory(GreetingService, {**memory_config, **web_config})
    container.start()
    assert web_session.get("/greet/Ada").text == "Hello, Ada!"
