"""Service containers and worker contexts (public nameko 2.x path)."""

from nameko._runtime.container import ServiceContainer, get_container_cls, get_service_name
from nameko._runtime.worker import WorkerContext, new_call_id

__all__ = [
    "ServiceContainer",
    "WorkerContext",
    "get_container_cls",
    "get_service_name",
    "new_call_id",
]
