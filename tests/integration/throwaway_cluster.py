"""A private three-node RabbitMQ cluster, for tests that stop and restart nodes.

Each node is a `ThrowawayRabbit` (own node name, AMQP and distribution
ports, data, logs and config in a temporary folder, no plugins), started in
parallel; then the second and third join the first with ``rabbitmqctl -n
<node> stop_app / join_cluster / start_app``. The nodes and ``rabbitmqctl``
share the Erlang cookie of the user they run as (as root, Debian's wrappers
switch to the ``rabbitmq`` user, whose ``~/.erlang.cookie`` that is), which
is what lets them talk to each other.

A stopped node that starts again on its data rejoins the cluster by itself;
quorum queues stay available while two of the three nodes are up.
"""

from __future__ import annotations

import os
import subprocess
import time

from tests.integration.throwaway_broker import ThrowawayRabbit

CTL_TIMEOUT = 60


class ThrowawayCluster:
    """Three (``size``) clustered nodes; `close` removes every trace."""

    def __init__(self, size: int = 3) -> None:
        prefix = f"shimeji-cluster-{os.getpid()}"
        self.nodes = [ThrowawayRabbit(f"{prefix}-{i}") for i in range(size)]
        self.timings: dict[str, float] = {}

    def uris(self, vhost: str = "") -> list[str]:
        return [node.uri(vhost) for node in self.nodes]

    def start(self) -> None:
        """Start every node, then cluster them. Records the seconds each step took."""
        began = time.monotonic()
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready()
        self.timings["start nodes"] = time.monotonic() - began
        joined = time.monotonic()
        first = self.nodes[0].node
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first)
            self.ctl(node, "start_app")
            node.wait_ready()
        self.timings["join cluster"] = time.monotonic() - joined

    def running_nodes(self) -> list[str]:
        """The nodes the first node we have not stopped sees running."""
        up = next(node for node in self.nodes if node._server is not None)
        out = self.ctl(up, "eval", "rabbit_nodes:all_running().")
        return sorted(name for name in (n.node for n in self.nodes) if name in out)

    def add_vhost(self, vhost: str) -> None:
        node = self.nodes[0]
        self.ctl(node, "add_vhost", vhost)
        self.ctl(node, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def ctl(self, node: ThrowawayRabbit, *args: str) -> str:
        command = ["rabbitmqctl", "-q", "-n", node.node, *args]
        try:
            done = subprocess.run(
                command, check=True, capture_output=True, text=True, timeout=CTL_TIMEOUT
            )
            return done.stdout
        except subprocess.CalledProcessError as exc:
            raise AssertionError(
                f"rabbitmqctl -n {node.node} {' '.join(args)} failed: {exc.stderr or exc.output}"
                f"\n{node.log_tail()}"
            ) from exc

    def close(self) -> None:
        """Stop every node and remove its folder."""
        try:
            for node in reversed(self.nodes):
                node.stop()
        finally:
            for node in self.nodes:
                node.close()
