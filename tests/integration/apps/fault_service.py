"""A service for fault tests, run with `nameko run` in its own process."""

import collections
import os
import time

from nameko.events import BROADCAST, event_handler
from nameko.rpc import rpc

CALLS = collections.Counter()


class FaultService:
    name = "fault_service"

    @rpc
    def ping(self):
        return "pong"

    @rpc
    def spin(self, seconds):
        """Hold the CPU in pure Python (no I/O, no sleep) for `seconds`."""
        CALLS["spin"] += 1
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
        return CALLS["spin"]

    @rpc
    def slow(self, seconds, tag):
        CALLS[tag] += 1
        time.sleep(seconds)  # a worker doing blocking I/O
        return tag

    @rpc
    def hold(self, release_file, tag, limit=60):
        """Run until the test creates `release_file` (at most `limit` s): a
        job still running whatever the test does meanwhile, however slow."""
        CALLS[tag] += 1
        deadline = time.monotonic() + limit
        while not os.path.exists(release_file) and time.monotonic() < deadline:
            time.sleep(0.05)  # the service's own blocking job, polling its release
        return tag

    @rpc
    async def block_loop(self, seconds):
        """An ``async def`` that never awaits: holds the event loop (and the
        CPU) for `seconds`, as a careless coroutine would."""
        CALLS["block_loop"] += 1
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pass
        return CALLS["block_loop"]

    @rpc
    def calls(self, tag):
        return CALLS[tag]

    @rpc
    def make(self, size, tag="make"):
        """A result of ``size`` characters (for message size limits)."""
        CALLS[tag] += 1
        return "x" * size

    @event_handler("fault_source", "poke")
    def on_poke(self, payload):
        CALLS[f"pooled:{payload}"] += 1

    @event_handler("fault_source", "poke", handler_type=BROADCAST, reliable_delivery=False)
    def on_poke_broadcast(self, payload):
        """Its queue is neither durable nor kept: a broker restart deletes it."""
        CALLS[f"broadcast:{payload}"] += 1
