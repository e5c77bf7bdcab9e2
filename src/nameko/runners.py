"""Run several services together (public nameko 2.x path)."""

from nameko._runtime.runner import ServiceRunner, run_services

__all__ = ["ServiceRunner", "run_services"]
