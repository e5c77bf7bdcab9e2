"""Telling ``async def`` entrypoints apart, without importing asyncio.

A container asks this of every entrypoint method; only a service that has one
imports `nameko._aio.workers` (and with it asyncio and its event loop thread).
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["ASYNC_DRAIN_TIMEOUT_CONFIG_KEY", "is_async_method"]

# shimeji: seconds a graceful stop waits for async workers before cancelling
# them (default: no limit). Sync workers can't be cancelled: they are always
# waited for.
ASYNC_DRAIN_TIMEOUT_CONFIG_KEY = "ASYNC_DRAIN_TIMEOUT"


def is_async_method(fn: Any) -> bool:
    """An ``async def`` method: its workers run on the container's loop."""
    return inspect.iscoroutinefunction(fn)
