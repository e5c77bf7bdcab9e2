"""The services the testing guide's examples test (docs/testing.md)."""

from nameko import config
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http


class Greetings(DependencyProvider):
    """Greetings by language: a dependency that tests can replace."""

    def setup(self):
        self.greetings = {"en": "Hello", "fr": "Bonjour"}

    def get_dependency(self, worker_ctx):
        return self.greetings


class GreetingService:
    name = "greeting"

    greetings = Greetings()

    @rpc
    def greet(self, name, language="en"):
        return f"{self.greetings[language]}, {name}!"

    @rpc
    def motto(self):
        return config.get("MOTTO", "be kind")  # nameko 3 style: the global config

    @http("GET", "/greet/<name>")
    def greet_http(self, request, name):
        return self.greet(name)


class FrontService:
    name = "front"

    greeting = RpcProxy("greeting")

    @rpc
    def welcome(self, name):
        return self.greeting.greet(name).upper()
