"""A service for the cluster test (test_cluster.py), run with `nameko run`.

Every request it executes and every event it handles is appended to the
file ``RECORD_FILE`` names, with the pid and the time (one short line per write, O_APPEND: several
processes share the file without interleaving)."""

import os
import time

from nameko.dependency_providers import Config
from nameko.events import event_handler
from nameko.rpc import rpc


def record(path, kind, item):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {item} {os.getpid()} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


class ClusterService:
    name = "cluster_service"
    config = Config()

    @rpc
    def echo(self, call_id="ping"):
        record(self.config["RECORD_FILE"], "rpc", call_id)
        return call_id

    @event_handler("cluster_client", "tick")
    def on_tick(self, event_id):
        record(self.config["RECORD_FILE"], "event", event_id)
