"""Run several services together (public nameko 2.x path)."""

from nameko._reexports import reexported
from nameko._runtime.runner import ServiceRunner, run_services

__all__ = ["ServiceRunner", "run_services"]


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
