"""Service containers and worker contexts (public nameko 2.x path)."""

from nameko._reexports import reexported
from nameko._runtime.container import ServiceContainer, get_container_cls, get_service_name
from nameko._runtime.worker import WorkerContext, new_call_id

__all__ = [
    "ServiceContainer",
    "WorkerContext",
    "get_container_cls",
    "get_service_name",
    "new_call_id",
]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
