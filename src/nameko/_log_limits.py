"""`RateLimitedLog`: log lines a client can trigger at will, at a bounded rate.

How it works
------------
Each line has a *kind* (a short key such as ``"bad request"``). The first
line of a kind is logged at once; later lines of that kind within ``period``
seconds are only counted. The next line of the kind after the period is
logged with ``(K similar suppressed in the last N s)`` appended, and `flush`
(called from a periodic sweep) logs the count on its own when nothing new
came, so a burst never hides how big it was. At most one line per kind per
period reaches the handlers, however hard a peer tries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from nameko._concurrency import Lock

__all__ = ["RateLimitedLog"]


@dataclass
class _Kind:
    level: int
    next_at: float = 0.0  # monotonic time from which the next line may be logged
    suppressed: int = 0


class RateLimitedLog:
    """At most one line per kind per ``period`` seconds on ``logger``."""

    def __init__(self, logger: logging.Logger, period: float = 10.0) -> None:
        self.logger = logger
        self.period = period
        self._kinds: dict[str, _Kind] = {}
        self._lock = Lock()

    def log(self, level: int, kind: str, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` unless a line of ``kind`` went out in the last period.

        Returns whether the line was logged (False: it was counted).
        """
        if not self.logger.isEnabledFor(level):
            return False
        now = time.monotonic()
        with self._lock:
            state = self._kinds.get(kind)
            if state is None:
                state = self._kinds[kind] = _Kind(level)
            if now < state.next_at:
                state.suppressed += 1
                return False
            suppressed, state.suppressed = state.suppressed, 0
            state.next_at = now + self.period
        if suppressed:
            msg += " (%d similar suppressed in the last %gs)"
            args = (*args, suppressed, self.period)
        self.logger.log(level, msg, *args)
        return True

    def flush(self) -> None:
        """Log the counts of kinds whose period ended with lines suppressed."""
        now = time.monotonic()
        due: list[tuple[int, str, int]] = []
        with self._lock:
            for kind, state in self._kinds.items():
                if state.suppressed and now >= state.next_at:
                    due.append((state.level, kind, state.suppressed))
                    state.suppressed = 0
                    state.next_at = now + self.period
        for level, kind, count in due:
            self.logger.log(
                level, "%d similar %s lines suppressed in the last %gs", count, kind, self.period
            )
