"""Services in nameko 3's style (global config, ServiceRpc) beside a 2.x one."""

from nameko import config
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy, ServiceRpc, rpc


class Prices:
    name = "prices"

    @rpc
    def price(self, item):
        return config["PRICES"][item] * config.get("MARKUP", 1)


class Legacy:
    name = "legacy"
    settings = Config()

    @rpc
    def greeting(self):
        return self.settings["GREETING"]


class Shop:
    name = "shop"
    prices = ServiceRpc("prices")  # nameko 3
    legacy = RpcProxy("legacy")  # nameko 2

    @rpc
    def quote(self, item):
        return {"price": self.prices.price(item), "greeting": self.legacy.greeting()}

    @rpc
    def ping(self):
        return "pong"
