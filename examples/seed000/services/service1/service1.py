from nameko.rpc import rpc
from utils.dependencies import LoggingDependency


class GreetingService:
    name = "greeting_service"
    log = LoggingDependency()

    @rpc
    def hello(self, name):
        return "Hello, {}!".format(name)

    @rpc
    def raise_exception(self):
        raise Exception()
