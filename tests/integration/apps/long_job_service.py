"""A service whose jobs outlast the broker's consumer_timeout (run with
`nameko run` against a node with a short one)."""

import collections
import time

from nameko.events import event_handler
from nameko.rpc import rpc

STARTED = collections.Counter()
FINISHED = collections.Counter()


class LongJobService:
    name = "long_job"

    @rpc
    def crunch(self, seconds, tag):
        """A job that holds its request for ``seconds`` (blocking work)."""
        STARTED[tag] += 1
        time.sleep(seconds)
        FINISHED[tag] += 1
        return f"{tag} done"

    @event_handler("long_job_source", "job")
    def on_job(self, payload):
        STARTED[payload["tag"]] += 1
        time.sleep(payload["seconds"])
        FINISHED[payload["tag"]] += 1

    @rpc
    def runs(self, tag=""):
        return STARTED[tag], FINISHED[tag]
