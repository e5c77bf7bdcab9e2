"""``/healthz`` and ``/readyz``: what they check, precisely (D26).

Healthy (liveness): the process answers, and no service that should be
running has lost its broker connection for good. A connection that is up
or being re-established counts as healthy: restarting the process would
not bring the broker back, and a fleet restarting together during a broker
outage only adds load. Unhealthy: the connection was closed while its
service is running (its I/O thread ended, or it gave up reconnecting), or a
service died. Services stopping gracefully stay healthy while they drain.

Ready (readiness): every service has started and is not stopping, its
connection is up, and every consumer it wants (RPC, event handlers,
``@consume``, reply queues) is attached. A reconnect makes it unready until
its consumers are restored; a graceful stop makes it unready from its start.
A service without broker entrypoints (only ``@http``, ``@timer``) is ready
once started.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nameko._broker.base import Broker
from nameko._messaging.connection import BrokerConnection

__all__ = ["broker_of", "health", "readiness"]


def broker_of(container: Any) -> Broker | None:
    """The container's open broker connection, without opening one."""
    connection = container.shared_extensions.get(BrokerConnection)
    return connection.current if isinstance(connection, BrokerConnection) else None


def _state(container: Any) -> str:
    # getattr: a SERVICE_CONTAINER_CLS of one's own may lack shimeji's attributes
    if getattr(container, "stopping", False):
        return "stopping" if container.started else "stopped"
    return "running" if getattr(container, "start_completed", container.started) else "starting"


def _connection(broker: Broker | None) -> str:
    if broker is None:
        return "none"
    if broker.is_connected:
        return "connected"
    return "reconnecting" if broker.is_alive else "closed"


def health(containers: Iterable[Any]) -> tuple[bool, dict[str, Any]]:
    services = {}
    healthy = True
    for container in containers:
        state, connection = _state(container), _connection(broker_of(container))
        problem = None
        if state == "running" and connection == "closed":
            problem = "its broker connection is closed and will not come back"
        healthy = healthy and problem is None
        services[container.service_name] = {"state": state, "broker": connection}
        if problem:
            services[container.service_name]["problem"] = problem
    return healthy, {"healthy": healthy, "services": services}


def readiness(containers: Iterable[Any]) -> tuple[bool, dict[str, Any]]:
    services = {}
    ready = True
    for container in containers:
        broker = broker_of(container)
        state, connection = _state(container), _connection(broker)
        statuses = broker.consumer_status() if broker is not None else []
        detached = sorted(s.queue for s in statuses if not s.attached)
        problem = _not_ready(state, connection, detached)
        ready = ready and problem is None
        services[container.service_name] = {
            "state": state,
            "broker": connection,
            "consumers": len(statuses),
            "attached": len(statuses) - len(detached),
            **({"detached": detached} if detached else {}),
            **({"problem": problem} if problem else {}),
        }
    return ready, {"ready": ready, "services": services}


def _not_ready(state: str, connection: str, detached: list[str]) -> str | None:
    if state != "running":
        return f"the service is {state}"
    if connection not in ("connected", "none"):
        return f"its broker connection is {connection}"
    if detached:
        return f"{len(detached)} consumer(s) not attached"
    return None
