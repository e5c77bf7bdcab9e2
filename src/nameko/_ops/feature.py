"""Start and stop the operations endpoint of a runner (``nameko run``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from nameko._listening import CannotListen
from nameko._ops.address import OPS_ADDRESS_CONFIG_KEY, parse_address
from nameko._ops.exposition import CONTENT_TYPE
from nameko._ops.health import health, readiness
from nameko._ops.metrics import WorkerMetrics, render
from nameko._ops.server import OpsServer, Response

__all__ = ["OPS_ADDRESS_CONFIG_KEY", "OpsEndpoint", "ops_feature", "serve_ops"]

_log = logging.getLogger("nameko.ops")


class OpsEndpoint:
    """``/healthz``, ``/readyz`` and ``/metrics`` for the containers of a
    runner, served until `close`."""

    def __init__(self, runner: Any, address: object) -> None:
        host, port = parse_address(address)
        self.runner = runner
        self.metrics = [WorkerMetrics(container) for container in runner.containers]
        for observer in self.metrics:
            observer.container.worker_observers.append(observer)
        routes: dict[str, Callable[[], Response]] = {
            "/healthz": lambda: _json(*health(runner.containers)),
            "/readyz": lambda: _json(*readiness(runner.containers)),
            "/metrics": lambda: (200, CONTENT_TYPE, render(self.metrics).encode()),
        }
        try:
            self.server = OpsServer(host, port, routes)
        except OSError as exc:
            self._detach()
            fix = f"set {OPS_ADDRESS_CONFIG_KEY} (or --ops-address) to a free [host:]port"
            raise CannotListen(host, port, exc, fix) from None

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def close(self) -> None:
        self.server.close()
        self._detach()

    def _detach(self) -> None:
        for observer in self.metrics:
            try:
                observer.container.worker_observers.remove(observer)
            except ValueError:
                pass


def _json(ok: bool, body: Mapping[str, Any]) -> Response:
    return (200 if ok else 503), "application/json", json.dumps(body).encode() + b"\n"


def serve_ops(runner: Any, address: object) -> OpsEndpoint:
    """Serve the operations endpoint of ``runner`` on ``[host:]port`` (add
    its services first: their containers get the metrics observer now)."""
    endpoint = OpsEndpoint(runner, address)
    host, port = endpoint.address
    _log.info("operations endpoint on http://%s:%s (/healthz /readyz /metrics)", host, port)
    return endpoint


def ops_feature(runner: Any, config: Mapping[str, Any]) -> Callable[[], None] | None:
    """The ``nameko run`` feature: on when ``OPS_ADDRESS`` is set."""
    address = config.get(OPS_ADDRESS_CONFIG_KEY)
    if address is None or address == "":
        return None
    endpoint = OpsEndpoint(runner, address)
    host, port = endpoint.address
    print(f"operations endpoint on http://{host}:{port}", flush=True)
    return endpoint.close
