"""Built-in dependency providers (public nameko 2.x path)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from nameko._reexports import reexported
from nameko._runtime.extensions import DependencyProvider

__all__ = ["Config", "DependencyProvider"]


class Config(DependencyProvider):
    """Injects a shallow copy of the container's config into each worker."""

    def get_dependency(self, worker_ctx: Any) -> Mapping[str, Any]:
        return copy.copy(self.container.config)  # a dict's copy(), or the global Config's


def __getattr__(name: str) -> object:  # what nameko exposed here by importing it
    return reexported(__name__, name)
