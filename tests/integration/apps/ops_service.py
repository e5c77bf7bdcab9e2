"""A service for the operations endpoint tests, run with `nameko run`."""

import time

from nameko.events import event_handler
from nameko.rpc import rpc


class OpsService:
    name = "ops_service"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def fail(self, kind):
        raise {"value": ValueError, "key": KeyError}[kind](kind)

    @rpc
    def slow(self, seconds):
        time.sleep(seconds)  # a worker doing blocking I/O
        return seconds

    @event_handler("ops_source", "poke")
    def on_poke(self, payload):
        return payload
