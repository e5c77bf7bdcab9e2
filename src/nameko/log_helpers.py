"""Logging helpers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ["make_timing_logger"]


def make_timing_logger(
    logger: logging.Logger, precision: int = 3, level: int = logging.DEBUG
) -> Callable[..., AbstractContextManager[None]]:
    """A context-manager factory ``log_time(msg, *args)`` that logs
    ``"<msg> in <seconds>s"`` (with ``precision`` decimals) when the block exits.
    """
    suffix = f" in %0.{precision}fs"

    @contextmanager
    def log_time(msg: str, *args: Any) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            logger.log(level, msg + suffix, *args, elapsed)

    return log_time
